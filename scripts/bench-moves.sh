#!/usr/bin/env bash
# Client latency while replicas move (docs/PERFORMANCE.md, "Latency during rebalancing").
#
# Three nodes hold TABLES tables (one partition each) loaded with ITEMS items of ITEM_SIZE bytes.
# The same open-loop PutItem load (RATE puts/s in all, spread over the tables and sent through the
# three nodes) runs twice for DURATION: first with the cluster settled (baseline), then right after
# a fourth node joins, while placement moves replicas onto it (one move every 2 s, each streaming
# the partition as a snapshot). It reports both runs' latency percentiles, errors, and how many
# replicas moved during the second run. Moves are throttled so that clients keep their latency:
# compare the p99 of the two runs (a ratio; the machine is shared and noisy).
#
# Output: a Markdown table on stdout and in target/bench-moves.md.
#
# Settings (environment variables, defaults in brackets):
#   TABLES [12]  ITEMS [2000]  ITEM_SIZE [1024]  RATE [300]  DURATION [30s]  PORT [18650]
#   NO_BUILD [0]  KEEP_LOGS [unset: a directory to copy the node logs into]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TABLES=${TABLES:-12}
ITEMS=${ITEMS:-2000}
ITEM_SIZE=${ITEM_SIZE:-1024}
RATE=${RATE:-300}
DURATION=${DURATION:-30s}
PORT=${PORT:-18650}
AK=AKIDSHOALBENCH
SK=shoal-bench-secret

log() { printf '[bench-moves] %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "jq is required"; exit 1; }
command -v curl >/dev/null || { log "curl is required"; exit 1; }

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal >&2)
fi
mkdir -p "$TARGET_DIR"
WORK=$(mktemp -d "$TARGET_DIR/bench-moves-run.XXXXXX")
cp "$TARGET_DIR/release/shoal" "$WORK/"
SHOAL=$WORK/shoal
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS" && cp "$WORK"/n*.log "$KEEP_LOGS"/ && log "node logs kept in $KEEP_LOGS"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_node N [flags...]: node N serves the API on PORT+N and the cluster on PORT+100+N.
start_node() {
    local n=$1
    shift
    SHOAL_ADMIN_ACCESS_KEY_ID=$AK SHOAL_ADMIN_SECRET_ACCESS_KEY=$SK \
        "$SHOAL" start --listen "127.0.0.1:$((PORT + n))" \
        --cluster-listen "127.0.0.1:$((PORT + 100 + n))" \
        --data-dir "$WORK/d$n" --keys-dir "$WORK/k$n" "$@" >>"$WORK/n$n.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 300); do
        port_open "$((PORT + n))" && return 0
        sleep 0.1
    done
    log "node $n did not start; its log:"
    cat "$WORK/n$n.log" >&2
    exit 1
}

status() { curl -s "http://127.0.0.1:$((PORT + 1))/status"; }

bench() {
    "$SHOAL" bench --endpoint "http://127.0.0.1:$((PORT + $1))" --access-key-id "$AK" \
        --secret-access-key "$SK" --table "$2" --item-size "$ITEM_SIZE" --items "$ITEMS" \
        --keep-table "${@:3}" 2>>"$WORK/bench.log" | tail -n 1
}

# Replicas placed on node 4 (the moves done so far).
on_node4() {
    status | jq '[.groups[] | select(.kind == "partition") | .voters[] | select(. == 4)] | length'
}

# load NAME: the open-loop load over every table for DURATION; prints one summary line.
load() {
    local name=$1 per_table=$(( (RATE + TABLES - 1) / TABLES )) pids=() t
    for t in $(seq 1 "$TABLES"); do
        bench $(((t - 1) % 3 + 1)) "moves$t" --workload put --rate "$per_table" --concurrency 4 \
            --duration "$DURATION" >"$WORK/$name$t.json" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    jq -s --arg name "$name" '{
        name: $name,
        ops: (map(.ops) | add),
        errors: (map(.errors) | add),
        p50: (map(.latency_us.p50) | add / length),
        p99: (map(.latency_us.p99) | max),
        p999: (map(.latency_us.p999) | max),
        max: (map(.latency_us.max) | max),
        error_types: (map(.error_types // {} | to_entries) | add | group_by(.key) | map({(.[0].key): (map(.value) | add)}) | add // {})
    }' "$WORK/$name"*.json
}

start_node 1
TOKEN=$("$SHOAL" cluster join-token --data-dir "$WORK/d1" --keys-dir "$WORK/k1")
for i in 2 3; do
    start_node "$i" --join "127.0.0.1:$((PORT + 101))" --join-token "$TOKEN"
done
log "3 nodes: creating and loading $TABLES tables of $ITEMS items"
for t in $(seq 1 "$TABLES"); do
    bench $(((t - 1) % 3 + 1)) "moves$t" --workload put --preload --concurrency 4 --duration 1s >/dev/null
done
log "baseline: $RATE puts/s for $DURATION"
BASE=$(load base)
log "node 4 joins; the same load while replicas move onto it"
TOKEN=$("$SHOAL" cluster join-token --data-dir "$WORK/d1" --keys-dir "$WORK/k1")
start_node 4 --join "127.0.0.1:$((PORT + 101))" --join-token "$TOKEN"
MOVING=$(load moving)
MOVED=$(on_node4)
DATA_MB=$(du -sm "$WORK/d1" | cut -f1)

{
    echo "| run | writes | errors | p50 µs (mean of tables) | p99 µs (worst table) | p99.9 µs | max µs |"
    echo "|---|---|---|---|---|---|---|"
    for r in "$BASE" "$MOVING"; do
        jq -r '"| \(.name) | \(.ops) | \(.errors) | \(.p50 | floor) | \(.p99 | floor) | \(.p999 | floor) | \(.max | floor) |"' <<<"$r"
    done
    echo
    echo "$MOVED replicas moved onto node 4 during the second run (of $TABLES partitions x 3 replicas;"
    echo "about $DATA_MB MB of data on node 1). p99 ratio (moving / baseline): $(jq -rn \
        --argjson a "$BASE" --argjson b "$MOVING" '($b.p99 / $a.p99 * 100 | floor) / 100')"
    for r in "$BASE" "$MOVING"; do
        jq -r 'select(.errors > 0) | "Errors in the \(.name) run: \(.error_types | to_entries | map("\(.key) x\(.value)") | join(", "))"' <<<"$r"
    done
} | tee "$TARGET_DIR/bench-moves.md"
