#!/usr/bin/env bash
# Runs the deterministic multi-Raft simulation over many seeds, in release mode:
# crates/shoal-raft/tests/sim.rs (crashes, partitions, loss) and tests/sim_wiped_node.rs (nodes
# also lose their disk and rejoin as a new node id).
#
# Usage: scripts/sim.sh [SEEDS [BASE [SECS]]]
#   SEEDS [1000]  how many seeds to run (SHOAL_SIM_SEEDS)
#   BASE  [0]     first seed (SHOAL_SIM_SEED_BASE); the run covers BASE..BASE+SEEDS
#   SECS  [300]   virtual seconds of faults per seed (SHOAL_SIM_SECS)
# Runs are deterministic (a seed replays exactly, in debug or release). A failing seed prints
#   reproduce with: SHOAL_SIM_SECS=<secs> SHOAL_SIM_SEED=<n> cargo test -p shoal-raft --test <sim|sim_wiped_node>
# (add --release to go faster, `-- --nocapture` to see the summary; the "trace" hash at the end of
# the summary line is the same on every replay).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1:-1000}"
BASE="${2:-0}"
SECS="${3:-300}"
export SHOAL_SIM_SEEDS="$SEEDS" SHOAL_SIM_SEED_BASE="$BASE" SHOAL_SIM_SECS="$SECS"
cargo test --release -p shoal-raft --test sim -- --nocapture simulated_clusters_stay_linearizable
cargo test --release -p shoal-raft --test sim_wiped_node -- --nocapture \
    a_wiped_node_rejoining_as_a_new_id_keeps_the_groups_safe
