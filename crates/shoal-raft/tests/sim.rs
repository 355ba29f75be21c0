//! The deterministic multi-Raft simulation (harness and what it checks: `simulator/mod.rs`):
//! many seeds of a faulty cluster stay safe and linearizable, a seed replays exactly, and the
//! checks are not vacuous.
//!
//! `SHOAL_SIM_SEEDS` (default 64) seeds run; `SHOAL_SIM_SEED=<n>` runs exactly one; see
//! `scripts/sim.sh` for long runs.

mod simulator;

use simulator::{Options, run_seed, run_seed_with, run_seeds};

#[test]
fn simulated_clusters_stay_linearizable() {
    run_seeds("sim", 64, Options::default(), |_| Ok(()));
}

/// Exact replay: two runs of a seed deliver the same messages at the same virtual times and
/// produce the same client history (what makes a failing seed reproducible by one command).
#[test]
fn the_same_seed_replays_identically() {
    for seed in [7, 1_001, 31_337] {
        let a = run_seed(seed, 20).unwrap_or_else(|e| panic!("seed {seed} failed: {e}"));
        let b = run_seed(seed, 20).unwrap_or_else(|e| panic!("seed {seed} failed: {e}"));
        assert_eq!(a.summary, b.summary, "seed {seed}: two runs differ");
        assert_eq!(
            a.trace, b.trace,
            "seed {seed}: two runs sent different messages"
        );
        assert_eq!(
            a.history, b.history,
            "seed {seed}: two runs' histories differ"
        );
        assert!(!a.history.is_empty(), "seed {seed}: empty history");
        eprintln!("{}", a.summary);
    }
}

/// The checks are not vacuous: serving reads from a replica's local state (no read index) is
/// caught as a linearizability violation.
#[test]
fn the_checks_catch_stale_reads() {
    let caught = (0..32u64).find(|&seed| {
        run_seed_with(
            seed,
            60,
            Options {
                stale_reads: true,
                ..Options::default()
            },
        )
        .is_err_and(|e| e.contains("linearizability violation"))
    });
    eprintln!("stale reads caught with seed {caught:?}");
    assert!(
        caught.is_some(),
        "32 seeds of stale reads passed the checks"
    );
}
