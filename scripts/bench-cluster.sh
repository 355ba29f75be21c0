#!/usr/bin/env bash
# One node vs a 3-node cluster on this machine, in the same run (docs/PERFORMANCE.md).
#
# For each setup: PutItem, GetItem (eventually consistent) and GetItem with ConsistentRead at
# each CONCURRENCY, ITEM_SIZE items, ITEMS preloaded, DURATION each. The cluster runs are made
# through node 1 and through node 2, since a request may land on the partition leader or on
# another replica (writes are then forwarded; consistent reads take a ReadIndex from the leader).
# The three nodes share the machine's cores with each other and with the load generator, so
# the cluster's absolute numbers understate what three machines would do; compare ratios.
#
# Output: a Markdown table on stdout and in target/bench-cluster.md, the JSON lines in
# target/bench-cluster.jsonl.
#
# Settings (environment variables, defaults in brackets):
#   DURATION [10s]  CONCURRENCY ["16 64"]  ITEMS [20000]  ITEM_SIZE [1024]  PORT [18250]
#   NO_BUILD [0]  SHOAL_BIN [the release build of this checkout] (another build to measure;
#   implies NO_BUILD)
#   WORKLOADS ["put get get-consistent"]: any of put, get, get-consistent, update,
#   transact-write and transact-get (TransactWriteItems of TX_SIZE puts / TransactGetItems of
#   TX_SIZE keys)  TX_SIZE [2]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"16 64"}
ITEMS=${ITEMS:-20000}
ITEM_SIZE=${ITEM_SIZE:-1024}
PORT=${PORT:-18250}
WORKLOADS=${WORKLOADS:-"put get get-consistent"}
TX_SIZE=${TX_SIZE:-2}
AK=AKIDSHOALBENCH
SK=shoal-bench-secret

log() { printf '[bench-cluster] %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "jq is required"; exit 1; }

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${SHOAL_BIN:-}" ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal >&2)
fi
WORK=$(mktemp -d "$TARGET_DIR/bench-cluster-run.XXXXXX")
cp "${SHOAL_BIN:-$TARGET_DIR/release/shoal}" "$WORK/shoal"
SHOAL=$WORK/shoal
PIDS=()
RAW=$WORK/raw.jsonl
: >"$RAW"

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
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
        --data-dir "$WORK/$SETUP/d$n" --keys-dir "$WORK/$SETUP/k$n" "$@" \
        >>"$WORK/$SETUP/n$n.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 300); do
        port_open "$((PORT + n))" && return 0
        sleep 0.1
    done
    log "node $n did not start; its log:"
    cat "$WORK/$SETUP/n$n.log" >&2
    exit 1
}

stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

# bench TAG NODE [flags...]
bench() {
    local tag=$1 node=$2 line
    shift 2
    line=$("$SHOAL" bench --endpoint "http://127.0.0.1:$((PORT + node))" --access-key-id "$AK" \
        --secret-access-key "$SK" --table bench --item-size "$ITEM_SIZE" --items "$ITEMS" \
        --keep-table "$@" 2>>"$WORK/bench.log" | tail -n 1)
    jq -c --arg t "$tag" '. + {tag: $t}' <<<"$line" | tee -a "$RAW" >&2
}

run_workloads() {
    local setup=$1 node=$2 c w flags
    for c in $CONCURRENCY; do
        for w in $WORKLOADS; do
            case $w in
            get-consistent) flags=(--workload get --consistent) ;;
            transact-write | transact-get) flags=(--workload "$w" --batch-size "$TX_SIZE") ;;
            *) flags=(--workload "$w") ;;
            esac
            bench "$setup|$w|$c" "$node" "${flags[@]}" --concurrency "$c" --duration "$DURATION"
        done
    done
}

# --- one node
SETUP=single
mkdir -p "$WORK/$SETUP"
start_node 1
log "single node: preloading $ITEMS items"
bench preload 1 --workload get --preload --concurrency 16 --duration 1s
run_workloads "1 node" 1
stop_all

# --- three nodes
SETUP=cluster
mkdir -p "$WORK/$SETUP"
start_node 1
TOKEN=$("$SHOAL" cluster join-token --data-dir "$WORK/$SETUP/d1" --keys-dir "$WORK/$SETUP/k1")
start_node 2 --join "127.0.0.1:$((PORT + 101))" --join-token "$TOKEN"
start_node 3 --join "127.0.0.1:$((PORT + 101))" --join-token "$TOKEN"
for i in $(seq 1 100); do
    voters=$(curl -s "http://127.0.0.1:$((PORT + 1))/status" | jq '[.groups[] | select(.group == 0) | .voters | length] | first // 0')
    [ "$voters" = 3 ] && break
    sleep 0.2
done
log "3 nodes: preloading $ITEMS items"
bench preload 1 --workload get --preload --concurrency 16 --duration 1s
sleep 2
leader=$(curl -s "http://127.0.0.1:$((PORT + 1))/status" | jq '[.groups[] | select(.table == "bench") | .leader] | first')
log "the table's partition leader is node $leader"
run_workloads "3 nodes, via node 1" 1
run_workloads "3 nodes, via node 2" 2
curl -s "http://127.0.0.1:$((PORT + 1))/status" >"$WORK/status.json"
stop_all

# --- report
{
    echo "| Setup | Workload | Concurrency | ops/s | p50 µs | p99 µs | errors |"
    echo "|---|---|---|---|---|---|---|"
    jq -r 'select(.tag != "preload") | (.tag | split("|")) as $t
        | "| \($t[0]) | \($t[1]) | \($t[2]) | \(.ops_per_s | floor) | \(.latency_us.p50) | \(.latency_us.p99) | \(.errors) |"' "$RAW"
    echo
    echo "Partition leader of the bench table during the 3-node runs: node $leader."
} | tee "$TARGET_DIR/bench-cluster.md"
cp "$RAW" "$TARGET_DIR/bench-cluster.jsonl"
