//! Partition splits in the deterministic multi-Raft simulation (harness: `simulator/mod.rs`,
//! [`Options::splits`]): one group starts over the whole key space and is split, and its
//! children split again, at random virtual times, under message loss, delay, reordering and
//! duplication, partitions, crashes and restarts (also between a split's apply and the child's
//! creation, and in the round that would persist the child's creation).
//!
//! The protocol modelled (Shoal's): the split is an entry in the parent's log; from it on the
//! parent refuses the upper range ("wrong partition") and keeps its rows frozen until the node
//! created the child, from a copy of the rows (bootstrap, on the child's placed voters) or empty
//! (join, to get the child leader's snapshot); clients route by key with a possibly stale map
//! and retry a refused operation on the child.
//!
//! Checked: every replica equals the replay of its group's committed log (a child's replay
//! starting from its range's rows in the parent's replay up to the split), no key is served by
//! two groups (a write applied outside its group's range at that index), every acknowledged
//! write survives, all replicas converge with every child created everywhere and no frozen rows
//! left, and the client history over all keys is linearizable. Two broken variants of the
//! protocol are caught.
//!
//! `SHOAL_SIM_SEEDS` (default 32) seeds run for the first test; `SHOAL_SIM_SEED=<n>` runs one;
//! `SHOAL_SIM_SECS` sets the faulty period (default 60 virtual seconds here).

mod simulator;

use simulator::{BrokenSplit, Options, env_u64, run_seed_with, run_seeds_for};

/// Virtual seconds of faults per seed unless `SHOAL_SIM_SECS` says otherwise.
const SECS: u64 = 60;

fn splits(broken_split: BrokenSplit) -> Options {
    Options {
        splits: true,
        broken_split,
        ..Options::default()
    }
}

#[test]
fn splitting_partitions_stay_linearizable() {
    let secs = env_u64("SHOAL_SIM_SECS").unwrap_or(SECS);
    run_seeds_for("sim_split", 32, secs, splits(BrokenSplit::No), |o| {
        if o.splits == 0 {
            return Err(format!(
                "{}\nno split took effect: the run proves nothing",
                o.summary
            ));
        }
        Ok(())
    });
}

/// A split run replays exactly (same messages, same history).
#[test]
fn a_split_seed_replays_identically() {
    let seed = 5;
    let a = run_seed_with(seed, 20, splits(BrokenSplit::No)).unwrap_or_else(|e| panic!("{e}"));
    let b = run_seed_with(seed, 20, splits(BrokenSplit::No)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b, "seed {seed}: two runs differ");
    assert!(a.splits > 0, "{}: no split", a.summary);
    eprintln!("{}", a.summary);
}

/// What only a safety failure reports (not a liveness one, such as no progress after healing).
const SAFETY: [&str; 4] = [
    "key served by two groups",
    "the replay of the committed log gives",
    "acknowledged write",
    "linearizability violation",
];

/// The first of `seeds` whose run with `broken` fails a safety check, with the failure.
fn caught(broken: BrokenSplit, seeds: std::ops::Range<u64>) -> (u64, String) {
    let mut other = Vec::new();
    for seed in seeds.clone() {
        match run_seed_with(seed, SECS, splits(broken)) {
            Err(e) if SAFETY.iter().any(|s| e.contains(s)) => return (seed, e),
            Err(e) => other.push(e),
            Ok(_) => {}
        }
    }
    panic!(
        "{broken:?}: seeds {seeds:?} passed the safety checks; other failures: {}",
        other.join("\n")
    );
}

/// Negative control: a parent that keeps applying writes of its child's range after the split
/// (so two groups serve those keys) is caught.
#[test]
fn the_checks_catch_a_parent_serving_the_childs_range() {
    let (seed, e) = caught(BrokenSplit::NoRefuse, 0..6);
    eprintln!("a parent serving its child's range caught with seed {seed}:\n{e}");
}

/// Negative control: a node that holds the frozen rows but bootstraps the child from an empty
/// state is caught.
#[test]
fn the_checks_catch_a_child_bootstrapped_empty() {
    let (seed, e) = caught(BrokenSplit::EmptyBootstrap, 0..6);
    eprintln!("a child bootstrapped from an empty state caught with seed {seed}:\n{e}");
}
