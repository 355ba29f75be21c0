#!/usr/bin/env bash
# Shoal single node on its own: the table docs/PERFORMANCE.md asks for.
#
#   1. put, get, ycsb-a, ycsb-b (a table with a hash key only) and query (a table with a range
#      key, ITEMS_PER_PARTITION items per partition key, Limit QUERY_LIMIT) at each CONCURRENCY,
#      ITEM_SIZE items, ITEMS preloaded; server CPU per operation from /proc.
#   2. Open loop: GetItem at half of the peak GetItem throughput measured in step 1 (the best
#      closed-loop get run), p50/p99 without coordinated omission.
#   3. Memory: a fresh node, RSS_ITEMS items loaded with BatchWriteItem; VmRSS and VmHWM after the
#      load and after reading every key once (get workload with a sequential-ish sweep is not
#      available, so a uniform get run of RSS_READ duration), against the raw data size
#      (RSS_ITEMS x ITEM_SIZE) and the size of the data directory.
#
# Output: a Markdown report on stdout and in target/bench-shoal.md, the JSON lines in
# target/bench-shoal.jsonl. The binaries are copied before the runs so a concurrent cargo build
# cannot swap them mid-run.
#
# Settings (environment variables, defaults in brackets):
#   DURATION [10s]  CONCURRENCY ["1 16 64"]  WORKLOADS ["put get query ycsb-a ycsb-b"]
#   ITEMS [100000]  ITEM_SIZE [1024]  ITEMS_PER_PARTITION [100]  QUERY_LIMIT [10]
#   OPEN_LOOP [1]  OPEN_DURATION [10s]
#   RSS [1]  RSS_ITEMS [1000000]  RSS_READ [20s]
#   PORT [18150]  NO_BUILD [0]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
WORKLOADS=${WORKLOADS:-"put get query ycsb-a ycsb-b"}
ITEMS=${ITEMS:-100000}
ITEM_SIZE=${ITEM_SIZE:-1024}
ITEMS_PER_PARTITION=${ITEMS_PER_PARTITION:-100}
QUERY_LIMIT=${QUERY_LIMIT:-10}
OPEN_LOOP=${OPEN_LOOP:-1}
OPEN_DURATION=${OPEN_DURATION:-10s}
RSS=${RSS:-1}
RSS_ITEMS=${RSS_ITEMS:-1000000}
RSS_READ=${RSS_READ:-20s}
PORT=${PORT:-18150}
AK=AKIDSHOALBENCH
SK=shoal-bench-secret

log() { printf '[bench-shoal] %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "jq is required"; exit 1; }

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal -p shoal-bench >&2)
fi
WORK=$(mktemp -d "$TARGET_DIR/bench-shoal-run.XXXXXX")
cp "$TARGET_DIR/release/shoal" "$TARGET_DIR/release/shoal-bench" "$WORK/"
SHOAL=$WORK/shoal
BENCH=$WORK/shoal-bench
SERVER_PID=
RAW=$WORK/raw.jsonl
: >"$RAW"

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() {
    local data=$WORK/data-$1
    rm -rf "$data" "$data-keys"
    SHOAL_ADMIN_ACCESS_KEY_ID=$AK SHOAL_ADMIN_SECRET_ACCESS_KEY=$SK \
        "$SHOAL" start --listen "127.0.0.1:$PORT" --data-dir "$data" --keys-dir "$data-keys" \
        >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 300); do
        port_open "$PORT" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "the server did not start; its log:"
    cat "$WORK/server.log" >&2
    exit 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# bench TAG TABLE [flags...]: one shoal-bench run; its JSON line, tagged, goes to the raw file.
bench() {
    local tag=$1 table=$2 line
    shift 2
    line=$("$BENCH" --endpoint "http://127.0.0.1:$PORT" --access-key-id "$AK" \
        --secret-access-key "$SK" --table "$table" --item-size "$ITEM_SIZE" --keep-table \
        --server-pid "$SERVER_PID" "$@" 2>>"$WORK/bench.log" | tail -n 1)
    jq -c --arg t "$tag" '. + {tag: $t}' <<<"$line" | tee -a "$RAW"
}

# kB of a /proc/PID/status field (VmRSS, VmHWM).
proc_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# ------------------------------------------------------------- 1. closed loop
if [ -n "$WORKLOADS" ] && [ -n "$CONCURRENCY" ]; then
    start_server main
    log "preloading $ITEMS items into 'hash' and 'range'"
    bench preload hash --items "$ITEMS" --workload get --preload --concurrency 16 --duration 1s >/dev/null
    bench preload range --items "$ITEMS" --items-per-partition "$ITEMS_PER_PARTITION" \
        --workload query --preload --concurrency 16 --duration 1s >/dev/null
    for w in $WORKLOADS; do
        for c in $CONCURRENCY; do
            log "$w, concurrency $c"
            if [ "$w" = query ]; then
                bench closed range --items "$ITEMS" --items-per-partition "$ITEMS_PER_PARTITION" \
                    --query-limit "$QUERY_LIMIT" --workload query --concurrency "$c" --duration "$DURATION" >/dev/null
            else
                bench closed hash --items "$ITEMS" --workload "$w" --concurrency "$c" --duration "$DURATION" >/dev/null
            fi
        done
    done

    # ------------------------------------------------------------- 2. open loop
    if [ "$OPEN_LOOP" = 1 ]; then
        PEAK=$(jq -s '[.[] | select(.tag == "closed" and .workload == "get") | .ops_per_s] | max // 0' "$RAW")
        if [ "${PEAK%.*}" -gt 0 ]; then
            RATE=$(jq -n --argjson p "$PEAK" '$p / 2 | floor')
            log "open loop: get at $RATE/s (half of the peak $PEAK/s)"
            bench open hash --items "$ITEMS" --workload get --rate "$RATE" --concurrency 64 \
                --duration "$OPEN_DURATION" >/dev/null
        fi
    fi
    stop_server
fi

# ------------------------------------------------------------- 3. memory
RSS_LINE=""
if [ "$RSS" = 1 ]; then
    start_server rss
    log "loading $RSS_ITEMS items for the memory measurement"
    bench rss-load mem --items "$RSS_ITEMS" --workload get --preload --concurrency 32 --duration 1s >/dev/null
    rss_loaded=$(proc_kb "$SERVER_PID" VmRSS)
    bench rss-read mem --items "$RSS_ITEMS" --workload get --concurrency 16 --duration "$RSS_READ" >/dev/null
    rss_read=$(proc_kb "$SERVER_PID" VmRSS)
    hwm=$(proc_kb "$SERVER_PID" VmHWM)
    disk=$(du -sk "$WORK/data-rss" | cut -f1)
    raw_kb=$((RSS_ITEMS * ITEM_SIZE / 1024))
    RSS_LINE=$(jq -cn --argjson items "$RSS_ITEMS" --argjson size "$ITEM_SIZE" \
        --argjson loaded "$rss_loaded" --argjson read "$rss_read" --argjson hwm "$hwm" \
        --argjson disk "$disk" --argjson raw "$raw_kb" \
        '{tag: "rss", items: $items, item_size: $size, raw_kib: $raw, rss_after_load_kib: $loaded,
          rss_after_reads_kib: $read, vm_hwm_kib: $hwm, data_dir_kib: $disk,
          rss_over_raw: ($read / $raw * 1000 | round / 1000)}')
    echo "$RSS_LINE" | tee -a "$RAW"
    stop_server
fi

# ------------------------------------------------------------- report
OUT=$TARGET_DIR/bench-shoal.md
cp "$RAW" "$TARGET_DIR/bench-shoal.jsonl"
{
    echo "## Shoal single node, $(date -u +%Y-%m-%d) ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo
    echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Closed loop, uniform keys, ${ITEM_SIZE}-byte items, $ITEMS items preloaded, $DURATION per run; query: $ITEMS_PER_PARTITION items per partition key, Limit $QUERY_LIMIT."
    echo
    echo "| workload | conc | ops/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/op | bench CPU µs/op | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    jq -r 'select(.tag == "closed" or .tag == "open")
        | "| \(.workload)\(if .tag == "open" then " (open loop, \(.rate | floor)/s)" else "" end) | \(.concurrency) | \(.ops_per_s | round) | \(.latency_us.p50 | round) | \(.latency_us.p99 | round) | \(.latency_us.p999 | round) | \(.server_cpu_us_per_op * 10 | round / 10) | \(.bench_cpu_us_per_op * 10 | round / 10) | \(.errors) |"' "$RAW"
    if [ -n "$RSS_LINE" ]; then
        echo
        jq -r '"Memory: \(.items) items of \(.item_size) bytes = \(.raw_kib / 1024 | round) MiB raw; RSS after the load \(.rss_after_load_kib / 1024 | round) MiB, after reads \(.rss_after_reads_kib / 1024 | round) MiB (peak \(.vm_hwm_kib / 1024 | round) MiB) = \(.rss_over_raw)× the raw data; data directory \(.data_dir_kib / 1024 | round) MiB on disk."' <<<"$RSS_LINE"
    fi
} >"$OUT"
cat "$OUT"
log "written $OUT"
