//! The Wing–Gong–Lowe search, one key at a time.
//!
//! Each operation contributes a call entry and a return entry to a doubly linked list sorted by
//! time (calls before returns at equal times, the permissive choice: touching intervals count as
//! concurrent). The search walks the list: at a call entry it tries to linearize that operation
//! next (apply it to the register; if the result matches and the pair (linearized set, state) is
//! new, it lifts the call and return entries out of the list and restarts from the head); at a
//! return entry it has failed to place an operation that must precede everything after it, so it
//! backtracks, undoing the last linearized operation and trying the call entry after it.
//!
//! Operations with an unknown result return at infinity, so their return entries sit at the end
//! of the list; reaching one means every operation with a known result is linearized (success):
//! the remaining unknown operations are taken never to have happened.

use std::collections::{HashMap, HashSet};

use crate::{CheckResult, Event, Op, Ret};

/// The default number of search steps per key before [`check`] gives up with
/// [`CheckResult::Timeout`].
pub const DEFAULT_STEP_BUDGET: u64 = 20_000_000;

/// Checks `history` with [`DEFAULT_STEP_BUDGET`] steps per key; see [`check_with_budget`].
pub fn check(history: &[Event]) -> CheckResult {
    check_with_budget(history, DEFAULT_STEP_BUDGET)
}

/// Checks that `history` is linearizable, key by key (keys in sorted order; the first key that
/// fails decides the result). Each key starts absent. A malformed event (a result that does not
/// fit its operation, or a return before the call) is reported as a violation of its key.
pub fn check_with_budget(history: &[Event], budget: u64) -> CheckResult {
    let mut by_key: HashMap<&str, Vec<&Event>> = HashMap::new();
    for ev in history {
        by_key.entry(ev.key.as_str()).or_default().push(ev);
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let events = by_key.remove(key).unwrap_or_default();
        let verdict = match KeyHistory::build(&events) {
            Ok(h) => h.search(budget),
            Err(explanation) => Verdict::Violation(explanation),
        };
        match verdict {
            Verdict::Ok => {}
            Verdict::Violation(explanation) => {
                return CheckResult::Violation {
                    key: key.to_string(),
                    explanation,
                };
            }
            Verdict::Timeout => {
                return CheckResult::Timeout {
                    key: key.to_string(),
                };
            }
        }
    }
    CheckResult::Ok
}

enum Verdict {
    Ok,
    Violation(String),
    Timeout,
}

/// A register value, interned (`None` = absent).
type Value = Option<u32>;

/// An operation with interned values.
#[derive(Clone, Copy)]
enum IOp {
    Read(Value),
    Write(Value),
    /// Compare-and-set that succeeded.
    CasOk(Value, Value),
    /// Compare-and-set that failed.
    CasFailed(Value),
    /// Unknown write: may have happened.
    MaybeWrite(Value),
    /// Unknown compare-and-set: sets the value if the condition held.
    MaybeCas(Value, Value),
}

impl IOp {
    /// Applies the operation to `state`; `None` if the recorded result is impossible there.
    fn step(self, state: Value) -> Option<Value> {
        match self {
            IOp::Read(v) => (v == state).then_some(state),
            IOp::Write(v) | IOp::MaybeWrite(v) => Some(v),
            IOp::CasOk(expect, v) => (expect == state).then_some(v),
            IOp::CasFailed(expect) => (expect != state).then_some(state),
            IOp::MaybeCas(expect, v) => Some(if expect == state { v } else { state }),
        }
    }
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

struct KeyHistory<'a> {
    events: Vec<&'a Event>,
    ops: Vec<IOp>,
    values: Vec<String>,
    /// List nodes: 0 is the head sentinel; node `1 + 2i` is op i's call, `2 + 2i` its return.
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl<'a> KeyHistory<'a> {
    fn build(all: &[&'a Event]) -> Result<KeyHistory<'a>, String> {
        let mut interner: HashMap<String, u32> = HashMap::new();
        let mut values = Vec::new();
        let mut intern = |v: &Option<String>| -> Value {
            v.as_ref().map(|s| {
                *interner.entry(s.clone()).or_insert_with(|| {
                    values.push(s.clone());
                    u32::try_from(values.len() - 1).unwrap_or(u32::MAX)
                })
            })
        };
        let mut events = Vec::new();
        let mut ops = Vec::new();
        for ev in all {
            let op = match (&ev.op, &ev.ret) {
                (Op::Read, Ret::Unknown) => continue,
                (Op::Read, Ret::Read(v)) => IOp::Read(intern(v)),
                (Op::Write(v), Ret::Ok) => IOp::Write(intern(v)),
                (Op::Write(v), Ret::Unknown) => IOp::MaybeWrite(intern(v)),
                (Op::CondWrite { expect, value }, Ret::Ok) => {
                    IOp::CasOk(intern(expect), intern(value))
                }
                (Op::CondWrite { expect, .. }, Ret::CondFailed) => IOp::CasFailed(intern(expect)),
                (Op::CondWrite { expect, value }, Ret::Unknown) => {
                    IOp::MaybeCas(intern(expect), intern(value))
                }
                _ => return Err(format!("malformed event: {}", describe(ev))),
            };
            if ev.ret != Ret::Unknown && ev.ret_at < ev.call {
                return Err(format!("event returns before its call: {}", describe(ev)));
            }
            events.push(*ev);
            ops.push(op);
        }
        // A value read (or expected by a successful compare-and-set) that no write of the key
        // could have stored cannot be linearized: say so without searching.
        let mut stored: HashSet<Value> = HashSet::from([None]);
        for op in &ops {
            match op {
                IOp::Write(v) | IOp::MaybeWrite(v) | IOp::CasOk(_, v) | IOp::MaybeCas(_, v) => {
                    stored.insert(*v);
                }
                IOp::Read(_) | IOp::CasFailed(_) => {}
            }
        }
        for (ev, op) in events.iter().zip(&ops) {
            let seen = match op {
                IOp::Read(v) | IOp::CasOk(v, _) => v,
                _ => continue,
            };
            if !stored.contains(seen) {
                return Err(format!(
                    "a value no operation wrote was observed: {}",
                    describe(ev)
                ));
            }
        }
        // Sort the 2n entries by time; calls before returns at equal times.
        let mut entries: Vec<(u64, u8, usize)> = Vec::with_capacity(events.len() * 2);
        for (i, ev) in events.iter().enumerate() {
            entries.push((ev.call, 0, 1 + 2 * i));
            // Infinity is reserved for unknown results (their return entries must sort last).
            let ret_at = if ev.ret == Ret::Unknown {
                u64::MAX
            } else {
                ev.ret_at.min(u64::MAX - 1)
            };
            entries.push((ret_at, 1, 2 + 2 * i));
        }
        entries.sort_unstable();
        let nodes = 1 + entries.len();
        let mut next = vec![NIL; nodes];
        let mut prev = vec![NIL; nodes];
        let mut last = HEAD;
        for &(_, _, node) in &entries {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Ok(KeyHistory {
            events,
            ops,
            values,
            next,
            prev,
        })
    }

    fn is_call(node: usize) -> bool {
        node % 2 == 1
    }

    fn op_of(node: usize) -> usize {
        (node - 1) / 2
    }

    fn unknown(&self, op: usize) -> bool {
        matches!(self.ops[op], IOp::MaybeWrite(_) | IOp::MaybeCas(..))
    }

    /// Removes op's call and return entries from the list.
    fn lift(&mut self, op: usize) {
        for node in [1 + 2 * op, 2 + 2 * op] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = n;
            if n != NIL {
                self.prev[n] = p;
            }
        }
    }

    /// Puts back what [`KeyHistory::lift`] removed (must be undone in reverse order).
    fn unlift(&mut self, op: usize) {
        for node in [2 + 2 * op, 1 + 2 * op] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = node;
            if n != NIL {
                self.prev[n] = node;
            }
        }
    }

    fn search(mut self, budget: u64) -> Verdict {
        let n = self.ops.len();
        let mut linearized = vec![0u64; n.div_ceil(64)];
        let mut cache: HashSet<(Vec<u64>, Value)> = HashSet::new();
        // Stack of (op, state before it).
        let mut calls: Vec<(usize, Value)> = Vec::new();
        let mut best: Vec<usize> = Vec::new();
        let mut best_known = 0usize;
        let mut known_on_stack = 0usize;
        let mut state: Value = None;
        let mut entry = self.next[HEAD];
        let mut steps = 0u64;
        loop {
            steps += 1;
            if steps > budget {
                return Verdict::Timeout;
            }
            if entry == NIL {
                // Only possible when the list is empty.
                return Verdict::Ok;
            }
            let op = Self::op_of(entry);
            if Self::is_call(entry) {
                if let Some(new_state) = self.ops[op].step(state) {
                    linearized[op / 64] |= 1 << (op % 64);
                    if cache.insert((linearized.clone(), new_state)) {
                        calls.push((op, state));
                        if !self.unknown(op) {
                            known_on_stack += 1;
                        }
                        if known_on_stack > best_known {
                            best_known = known_on_stack;
                            best = calls.iter().map(|&(o, _)| o).collect();
                        }
                        state = new_state;
                        self.lift(op);
                        entry = self.next[HEAD];
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
                entry = self.next[entry];
            } else if self.unknown(op) {
                // Every return entry before this one (all finite ones) is lifted: every op
                // with a known result is linearized.
                return Verdict::Ok;
            } else {
                let Some((top, before)) = calls.pop() else {
                    return Verdict::Violation(self.explain(&best));
                };
                if !self.unknown(top) {
                    known_on_stack -= 1;
                }
                linearized[top / 64] &= !(1 << (top % 64));
                state = before;
                self.unlift(top);
                entry = self.next[1 + 2 * top];
            }
        }
    }

    fn explain(&self, best: &[usize]) -> String {
        let mut state: Value = None;
        for &op in best {
            state = self.ops[op].step(state).unwrap_or(state);
        }
        let mut placed = vec![false; self.ops.len()];
        for &op in best {
            placed[op] = true;
        }
        let mut stuck: Vec<usize> = (0..self.ops.len())
            .filter(|&i| !placed[i] && !self.unknown(i))
            .collect();
        stuck.sort_by_key(|&i| (self.events[i].ret_at, self.events[i].call));
        let mut out = format!(
            "no linearization; the longest linearizable prefix ({} ops) ends with the register {}:\n",
            best.len(),
            self.show(state)
        );
        const SHOWN: usize = 12;
        if best.len() > SHOWN {
            out.push_str(&format!("  ... {} earlier ops\n", best.len() - SHOWN));
        }
        for &op in best.iter().skip(best.len().saturating_sub(SHOWN)) {
            out.push_str(&format!("  {}\n", describe(self.events[op])));
        }
        out.push_str("and none of these can come next:\n");
        for &op in stuck.iter().take(SHOWN) {
            out.push_str(&format!("  {}\n", describe(self.events[op])));
        }
        if stuck.len() > SHOWN {
            out.push_str(&format!("  ... {} more\n", stuck.len() - SHOWN));
        }
        out
    }

    fn show(&self, v: Value) -> String {
        match v {
            None => "absent".to_string(),
            Some(i) => format!("{:?}", self.values.get(i as usize).map_or("?", |s| s)),
        }
    }
}

fn describe(ev: &Event) -> String {
    let ret_at = if ev.ret_at == u64::MAX {
        "inf".to_string()
    } else {
        ev.ret_at.to_string()
    };
    format!(
        "client {} {:?} -> {:?} [{}, {}]",
        ev.client, ev.op, ev.ret, ev.call, ret_at
    )
}
