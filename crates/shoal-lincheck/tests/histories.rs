//! Hand-written histories with a known verdict.

use shoal_lincheck::{CheckResult, Event, Op, Recorder, Ret, check, check_with_budget};

const INF: u64 = u64::MAX;

fn v(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn ev(client: u64, op: Op, ret: Ret, call: u64, ret_at: u64) -> Event {
    Event {
        client,
        key: "k".into(),
        op,
        ret,
        call,
        ret_at,
    }
}

fn write(client: u64, val: &str, call: u64, ret_at: u64) -> Event {
    ev(client, Op::Write(v(val)), Ret::Ok, call, ret_at)
}

fn read(client: u64, val: Option<&str>, call: u64, ret_at: u64) -> Event {
    ev(
        client,
        Op::Read,
        Ret::Read(val.map(String::from)),
        call,
        ret_at,
    )
}

fn cas(client: u64, expect: Option<&str>, val: &str, ret: Ret, call: u64, ret_at: u64) -> Event {
    let op = Op::CondWrite {
        expect: expect.map(String::from),
        value: v(val),
    };
    ev(client, op, ret, call, ret_at)
}

fn assert_violation(h: &[Event]) -> String {
    match check(h) {
        CheckResult::Violation { key, explanation } => {
            assert_eq!(key, "k");
            assert!(!explanation.is_empty());
            explanation
        }
        other => panic!("expected a violation, got {other:?} for {h:#?}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(check(&[]), CheckResult::Ok);
}

#[test]
fn sequential_write_then_read() {
    let h = [write(1, "a", 0, 10), read(2, Some("a"), 20, 30)];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn read_of_absent_key_before_any_write() {
    let h = [read(1, None, 0, 5), write(1, "a", 10, 20)];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn stale_read_after_completed_write_is_a_violation() {
    let h = [
        write(1, "a", 0, 10),
        write(1, "b", 20, 30),
        read(2, Some("a"), 40, 50),
    ];
    let why = assert_violation(&h);
    assert!(why.contains("Read"), "{why}");
}

#[test]
fn read_of_absent_after_completed_write_is_a_violation() {
    let h = [write(1, "a", 0, 10), read(2, None, 20, 30)];
    assert_violation(&h);
}

#[test]
fn lost_write_is_a_violation() {
    // Two acknowledged writes; afterwards readers see the first one twice: the second was lost.
    let h = [
        write(1, "a", 0, 10),
        write(2, "b", 15, 25),
        read(3, Some("a"), 30, 40),
        read(3, Some("a"), 50, 60),
    ];
    assert_violation(&h);
}

#[test]
fn cas_success_observed_twice_is_a_violation() {
    // Two clients both succeed with the same compare-and-set from the same expected value:
    // only one can have found "a" in place.
    let h = [
        write(1, "a", 0, 10),
        cas(2, Some("a"), "b", Ret::Ok, 20, 40),
        cas(3, Some("a"), "c", Ret::Ok, 25, 45),
    ];
    assert_violation(&h);
}

#[test]
fn cas_failure_when_condition_must_hold_is_a_violation() {
    let h = [
        write(1, "a", 0, 10),
        cas(2, Some("a"), "b", Ret::CondFailed, 20, 30),
    ];
    assert_violation(&h);
}

#[test]
fn concurrent_cas_one_wins_one_fails() {
    let h = [
        write(1, "a", 0, 10),
        cas(2, Some("a"), "b", Ret::Ok, 20, 40),
        cas(3, Some("a"), "c", Ret::CondFailed, 25, 45),
        read(1, Some("b"), 50, 60),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn concurrent_overlapping_ops_are_fine() {
    // The write of "b" overlaps both reads: one sees the old value, one the new; a third read
    // after both writes sees the latest.
    let h = [
        write(1, "a", 0, 10),
        write(2, "b", 20, 100),
        read(3, Some("b"), 30, 40),
        read(4, Some("a"), 35, 90),
        read(5, Some("b"), 110, 120),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn reads_must_not_flip_back_after_seeing_new_value() {
    // Read 1 finishes having seen "b"; a later read (starting after it) sees "a" again.
    let h = [
        write(1, "a", 0, 10),
        write(2, "b", 20, 100),
        read(3, Some("b"), 30, 40),
        read(4, Some("a"), 50, 60),
    ];
    assert_violation(&h);
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // The read is called exactly when the write returns: either order is allowed.
    let h = [write(1, "a", 0, 10), read(2, None, 10, 20)];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn delete_sets_absent() {
    let h = [
        write(1, "a", 0, 10),
        ev(1, Op::Write(None), Ret::Ok, 20, 30),
        read(2, None, 40, 50),
        cas(2, None, "c", Ret::Ok, 60, 70),
        read(2, Some("c"), 80, 90),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn unknown_write_observed_later_is_ok() {
    let h = [
        write(1, "a", 0, 10),
        ev(2, Op::Write(v("b")), Ret::Unknown, 20, INF),
        read(3, Some("b"), 500, 510),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn unknown_write_never_observed_is_ok() {
    let h = [
        write(1, "a", 0, 10),
        ev(2, Op::Write(v("b")), Ret::Unknown, 20, INF),
        read(3, Some("a"), 500, 510),
        read(3, Some("a"), 600, 610),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn unknown_write_cannot_take_effect_before_its_call() {
    let h = [
        write(1, "a", 0, 10),
        read(3, Some("b"), 20, 30),
        ev(2, Op::Write(v("b")), Ret::Unknown, 40, INF),
    ];
    assert_violation(&h);
}

#[test]
fn unknown_write_observed_then_undone_is_a_violation() {
    // Once a completed read saw the unknown write's value, a later read cannot see the old one.
    let h = [
        write(1, "a", 0, 10),
        ev(2, Op::Write(v("b")), Ret::Unknown, 20, INF),
        read(3, Some("b"), 30, 40),
        read(3, Some("a"), 50, 60),
    ];
    assert_violation(&h);
}

#[test]
fn unknown_cas_may_apply_or_not() {
    let applied = [
        write(1, "a", 0, 10),
        cas(2, Some("a"), "b", Ret::Unknown, 20, INF),
        read(3, Some("b"), 30, 40),
    ];
    assert_eq!(check(&applied), CheckResult::Ok);
    let not_applied = [
        write(1, "a", 0, 10),
        cas(2, Some("a"), "b", Ret::Unknown, 20, INF),
        read(3, Some("a"), 30, 40),
    ];
    assert_eq!(check(&not_applied), CheckResult::Ok);
    // Its condition never held, so it cannot explain "b".
    let impossible = [
        write(1, "a", 0, 10),
        cas(2, Some("z"), "b", Ret::Unknown, 20, INF),
        read(3, Some("b"), 30, 40),
    ];
    assert_violation(&impossible);
}

#[test]
fn unknown_reads_are_ignored() {
    let h = [
        write(1, "a", 0, 10),
        ev(2, Op::Read, Ret::Unknown, 5, INF),
        read(3, Some("a"), 20, 30),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn keys_are_independent() {
    let mut h = vec![write(1, "a", 0, 10), read(2, Some("a"), 20, 30)];
    let mut other = write(1, "x", 0, 10);
    other.key = "other".into();
    h.push(other);
    let mut stale = read(2, None, 20, 30);
    stale.key = "other".into();
    h.push(stale);
    match check(&h) {
        CheckResult::Violation { key, .. } => assert_eq!(key, "other"),
        r => panic!("expected a violation on key other, got {r:?}"),
    }
}

#[test]
fn malformed_events_are_reported() {
    let h = [ev(1, Op::Read, Ret::Ok, 0, 10)];
    assert_violation(&h);
    let h = [write(1, "a", 10, 5)];
    assert_violation(&h);
}

#[test]
fn step_budget_gives_timeout() {
    // Many fully concurrent writes of distinct values followed by two reads of two different
    // written values with no write between them: refuting it takes a search over many orders.
    let mut h: Vec<Event> = (0..40)
        .map(|i| write(i, &format!("v{i}"), 0, 1000))
        .collect();
    h.push(read(99, Some("v0"), 2000, 2010));
    h.push(read(98, Some("v1"), 2020, 2030));
    assert_eq!(
        check_with_budget(&h, 50),
        CheckResult::Timeout { key: "k".into() }
    );
}

#[test]
fn recorder_collects_a_checkable_history() {
    let rec = Recorder::new();
    let r2 = rec.clone();
    let t = rec.begin(1, "k", Op::Write(v("a")));
    rec.end(t, Ret::Ok);
    let handle = std::thread::spawn(move || {
        let t = r2.begin(2, "k", Op::Read);
        r2.end(t, Ret::Read(v("a")));
    });
    handle.join().unwrap();
    let _pending = rec.begin(3, "k", Op::Write(v("b")));
    let h = rec.history();
    assert_eq!(h.len(), 3);
    assert!(h[0].call <= h[0].ret_at && h[0].ret_at <= h[1].call);
    assert_eq!(h[2].ret, Ret::Unknown);
    assert_eq!(h[2].ret_at, u64::MAX);
    assert_eq!(check(&h), CheckResult::Ok);
}

#[test]
fn a_value_nobody_wrote_is_a_violation_without_searching() {
    // Many concurrent unknown writes make the search space huge; a read of a value none of
    // them wrote is refused at once, even with a budget of one step.
    let mut h: Vec<Event> = (0..400)
        .map(|i| ev(i, Op::Write(v(&format!("w{i}"))), Ret::Unknown, i, INF))
        .collect();
    h.push(read(1000, Some("never-written"), 10, 20));
    assert!(matches!(
        check_with_budget(&h, 1),
        CheckResult::Violation { .. }
    ));
    // A compare-and-set that succeeded expecting such a value is refused the same way.
    let h = vec![cas(1, Some("ghost"), "x", Ret::Ok, 1, 2)];
    assert!(matches!(
        check_with_budget(&h, 1),
        CheckResult::Violation { .. }
    ));
    // A read of a value only an unknown write stored is fine.
    let h = vec![
        ev(1, Op::Write(v("maybe")), Ret::Unknown, 1, INF),
        read(2, Some("maybe"), 2, 3),
    ];
    assert_eq!(check(&h), CheckResult::Ok);
}
