#!/usr/bin/env bash
# Server CPU per operation of several Shoal builds, measured in alternation in the same run.
#
#   scripts/compare-builds.sh before=/tmp/shoal-before after=target/release/shoal
#
# Each NAME=BINARY is started on its own port with a fresh data directory under target/ and
# preloaded with the same table; then every workload/concurrency runs ROUNDS times against each
# build in turn (before, after, before, after, ...), shoal-bench recording the server's CPU time
# per operation from /proc (steadier than throughput on a shared machine). Prints one line per
# (workload, concurrency, build): the median over rounds of server CPU µs/op and ops/s, and the
# ratio to the first build.
#
# Settings (environment variables, defaults in brackets):
#   WORKLOADS ["get put"]  CONCURRENCY ["16"]  DURATION [8s]  ROUNDS [3]  ITEMS [50000]
#   ITEM_SIZE [1024]  BASE_PORT [18170]  BENCH_BIN [target/release/shoal-bench]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKLOADS=${WORKLOADS:-"get put"}
CONCURRENCY=${CONCURRENCY:-16}
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
ITEMS=${ITEMS:-50000}
ITEM_SIZE=${ITEM_SIZE:-1024}
BASE_PORT=${BASE_PORT:-18170}
AK=AKIDSHOALCOMPARE
SK=shoal-compare-secret
[ $# -ge 1 ] || { echo "usage: scripts/compare-builds.sh NAME=BINARY [NAME=BINARY...]" >&2; exit 1; }
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
BENCH=${BENCH_BIN:-$TARGET_DIR/release/shoal-bench}
WORK=$(mktemp -d "$TARGET_DIR/compare-builds.XXXXXX")
RAW=$WORK/raw.jsonl
declare -a NAMES=()
declare -A PID=() PORT=()

cleanup() {
    local n
    for n in "${NAMES[@]}"; do kill "${PID[$n]}" 2>/dev/null || true; done
    for n in "${NAMES[@]}"; do wait "${PID[$n]}" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

i=0
for spec in "$@"; do
    name=${spec%%=*}
    bin=${spec#*=}
    i=$((i + 1))
    cp "$bin" "$WORK/shoal-$name"
    port=$((BASE_PORT + i))
    SHOAL_ADMIN_ACCESS_KEY_ID=$AK SHOAL_ADMIN_SECRET_ACCESS_KEY=$SK "$WORK/shoal-$name" start \
        --listen "127.0.0.1:$port" --data-dir "$WORK/data-$name" --keys-dir "$WORK/keys-$name" \
        >"$WORK/$name.log" 2>&1 &
    PID[$name]=$!
    PORT[$name]=$port
    NAMES+=("$name")
    for _ in $(seq 1 300); do port_open "$port" && break; sleep 0.1; done
done

bench() {
    local name=$1
    shift
    "$BENCH" --endpoint "http://127.0.0.1:${PORT[$name]}" --access-key-id "$AK" \
        --secret-access-key "$SK" --table cmp --items "$ITEMS" --item-size "$ITEM_SIZE" \
        --keep-table --server-pid "${PID[$name]}" "$@" 2>>"$WORK/bench.log" | tail -n 1
}

for n in "${NAMES[@]}"; do
    echo "[compare] preloading $n" >&2
    bench "$n" --workload get --preload --concurrency 16 --duration 1s >/dev/null
done
: >"$RAW"
for w in $WORKLOADS; do
    for c in $CONCURRENCY; do
        for r in $(seq 1 "$ROUNDS"); do
            for n in "${NAMES[@]}"; do
                echo "[compare] $w c=$c round $r: $n" >&2
                bench "$n" --workload "$w" --concurrency "$c" --duration "$DURATION" |
                    jq -c --arg b "$n" '. + {build: $b}' >>"$RAW"
            done
        done
    done
done

jq -r -s --arg first "${NAMES[0]}" '
    def median: sort | .[(length - 1) / 2 | floor];
    group_by([.workload, .concurrency])
    | .[]
    | (map(select(.build == $first)) | map(.server_cpu_us_per_op) | median) as $base
    | group_by(.build) | sort_by(.[0].build != $first)
    | .[]
    | "\(.[0].workload) c=\(.[0].concurrency) \(.[0].build): server CPU \(map(.server_cpu_us_per_op) | median * 10 | round / 10) µs/op, \(map(.ops_per_s) | median | round) ops/s, CPU vs \($first) \((map(.server_cpu_us_per_op) | median) / $base * 100 | round)%  (rounds: \(map(.server_cpu_us_per_op * 10 | round / 10) | tostring))"
' "$RAW"
