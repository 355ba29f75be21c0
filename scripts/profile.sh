#!/usr/bin/env bash
# Where a Shoal server spends its CPU per request: callgrind instruction counts (deterministic,
# immune to the noise of a shared machine) or perf cpu-clock samples (user and kernel time).
#
#   scripts/profile.sh callgrind get     # or put, ycsb-a, query, ... (any shoal-bench workload)
#   scripts/profile.sh perf get
#
# Steps: build Shoal in release mode (debug info is on in the release profile), start a node
# natively on a fresh data directory under target/, preload ITEMS items with shoal-bench, stop
# it; then
#   callgrind: restart it under `valgrind --tool=callgrind --collect-atstart=no`, warm up for
#     WARMUP, switch collection on (`callgrind_control -i on`), run the workload for DURATION at
#     CONCURRENCY connections, switch it off and dump. Instructions per request = total Ir / ops.
#     The bench runs natively; only the server is instrumented.
#   perf: restart it natively, warm up, and sample it (`perf record -e cpu-clock --call-graph
#     dwarf -p PID`) while the workload runs for DURATION. Kernel samples need
#     perf_event_paranoid <= 1 or root. Hardware counters are often unavailable in containers,
#     hence cpu-clock.
#
# Output in target/profile/<tool>-<workload>/: callgrind.out (open with callgrind_annotate or
# kcachegrind) or perf.data, bench.json (the shoal-bench JSON line), and summary.txt: ops,
# instructions (or samples) per op, the top functions inclusive and exclusive.
#
# Settings (environment variables, defaults in brackets):
#   ITEMS [20000]  ITEM_SIZE [1024]  CONCURRENCY [8]  DURATION [20s]  WARMUP [3s]  PORT [18199]
#   NO_BUILD [0]   1: use the binaries already in TARGET_DIR/release
#   SHOAL_BIN, BENCH_BIN [TARGET_DIR/release/...]  profile another build (e.g. a saved "before")
#   TAG []         suffix of the output directory, to keep several profiles apart
#   TARGET_DIR [cargo's target directory]
set -euo pipefail

TOOL=${1:?usage: scripts/profile.sh callgrind|perf WORKLOAD}
WORKLOAD=${2:-get}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ITEMS=${ITEMS:-20000}
ITEM_SIZE=${ITEM_SIZE:-1024}
CONCURRENCY=${CONCURRENCY:-8}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
PORT=${PORT:-18199}
AK=AKIDSHOALPROFILE
SK=shoal-profile-secret
TABLE=profile

log() { printf '[profile] %s\n' "$*" >&2; }

case $TOOL in
    callgrind) command -v valgrind >/dev/null || { log "valgrind is required (apt-get install valgrind)"; exit 1; } ;;
    perf) command -v perf >/dev/null || { log "perf is required (apt-get install linux-perf)"; exit 1; } ;;
    *) log "unknown tool '$TOOL' (callgrind or perf)"; exit 1 ;;
esac
command -v jq >/dev/null || { log "jq is required"; exit 1; }

TARGET_DIR=${TARGET_DIR:-$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)}
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p shoal -p shoal-bench >&2)
fi
SHOAL=${SHOAL_BIN:-$TARGET_DIR/release/shoal}
BENCH=${BENCH_BIN:-$TARGET_DIR/release/shoal-bench}
OUT=$TARGET_DIR/profile/$TOOL-$WORKLOAD${TAG:+-$TAG}
rm -rf "$OUT"
mkdir -p "$OUT"
DATA=$OUT/data
SERVER_PID=

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA" "$DATA-keys"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server [wrapper...]: starts the node (optionally under a wrapper such as valgrind).
start_server() {
    SHOAL_ADMIN_ACCESS_KEY_ID=$AK SHOAL_ADMIN_SECRET_ACCESS_KEY=$SK \
        "$@" "$SHOAL" start --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
        --keys-dir "$DATA-keys" >>"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        port_open "$PORT" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "the server did not start; its log:"
    cat "$OUT/server.log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

bench() {
    "$BENCH" --endpoint "http://127.0.0.1:$PORT" --access-key-id "$AK" --secret-access-key "$SK" \
        --table "$TABLE" --items "$ITEMS" --item-size "$ITEM_SIZE" --keep-table "$@" \
        2>>"$OUT/bench.log" | tail -n 1
}

# The query workload needs a table with a range key; the others use one without.
EXTRA=()
[ "$WORKLOAD" = query ] && EXTRA=(--items-per-partition 100)

port_open "$PORT" && { log "port $PORT is in use (set PORT)"; exit 1; }
rm -rf "$DATA" "$DATA-keys"
start_server
log "preloading $ITEMS items"
bench --workload get --preload --concurrency 16 --duration 1s "${EXTRA[@]}" >/dev/null
stop_server

case $TOOL in
    callgrind)
        # Start and open uninstrumented (fast), instrument for the warm-up, zero the counters,
        # measure, dump: the dump (callgrind.out.1) holds exactly the measured requests.
        start_server valgrind --tool=callgrind --instr-atstart=no \
            --callgrind-out-file="$OUT/callgrind.out"
        callgrind_control -i on "$SERVER_PID" >/dev/null
        log "warming up under callgrind ($WARMUP)"
        bench --workload "$WORKLOAD" --concurrency "$CONCURRENCY" --duration "$WARMUP" "${EXTRA[@]}" >/dev/null
        callgrind_control -z "$SERVER_PID" >/dev/null
        log "measuring $WORKLOAD for $DURATION at concurrency $CONCURRENCY"
        bench --workload "$WORKLOAD" --concurrency "$CONCURRENCY" --duration "$DURATION" "${EXTRA[@]}" >"$OUT/bench.json"
        callgrind_control -d "$SERVER_PID" >/dev/null
        stop_server
        mv "$OUT/callgrind.out.1" "$OUT/callgrind.out"
        ;;
    perf)
        start_server
        bench --workload "$WORKLOAD" --concurrency "$CONCURRENCY" --duration "$WARMUP" "${EXTRA[@]}" >/dev/null
        log "sampling $WORKLOAD for $DURATION at concurrency $CONCURRENCY"
        perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$SERVER_PID" \
            -o "$OUT/perf.data" 2>>"$OUT/perf.log" &
        PERF_PID=$!
        sleep 0.5
        bench --workload "$WORKLOAD" --concurrency "$CONCURRENCY" --duration "$DURATION" \
            --server-pid "$SERVER_PID" "${EXTRA[@]}" >"$OUT/bench.json"
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
        stop_server
        ;;
esac

OPS=$(jq -r .ops "$OUT/bench.json")
ERRORS=$(jq -r .errors "$OUT/bench.json")
{
    echo "workload=$WORKLOAD concurrency=$CONCURRENCY duration=$DURATION items=$ITEMS item_size=$ITEM_SIZE"
    echo "ops=$OPS errors=$ERRORS"
    case $TOOL in
        callgrind)
            IR=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$OUT/callgrind.out" | head -n 1)
            echo "instructions=$IR instructions_per_op=$((IR / (OPS > 0 ? OPS : 1)))"
            echo
            echo "== inclusive (share of all server instructions) =="
            callgrind_annotate --inclusive=yes --threshold=99 "$OUT/callgrind.out" 2>/dev/null | sed -n '1,80p'
            echo
            echo "== exclusive =="
            callgrind_annotate --inclusive=no --threshold=99 "$OUT/callgrind.out" 2>/dev/null | sed -n '1,70p'
            ;;
        perf)
            echo "server_cpu_us_per_op=$(jq -r .server_cpu_us_per_op "$OUT/bench.json")"
            echo
            echo "== by category (scripts/perf-categories.py) =="
            perf script -i "$OUT/perf.data" -F tid,ip,sym,dso 2>/dev/null | python3 "$ROOT/scripts/perf-categories.py"
            echo
            echo "== by object (user vs kernel) =="
            perf report -i "$OUT/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | sed -n '1,25p'
            echo
            echo "== exclusive, by symbol =="
            perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -v '^#' | sed -n '1,60p'
            echo
            echo "== inclusive, by symbol =="
            perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | sed -n '1,60p'
            ;;
    esac
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"
log "written $OUT"
