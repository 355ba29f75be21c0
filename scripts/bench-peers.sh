#!/usr/bin/env bash
# Shoal against its peers, measured side by side on this machine.
#
# Installs what it needs into a cache directory (dynalite from npm, Dynoxide with cargo install,
# redis-server and jq from Debian when running as root), builds Shoal in release mode, starts
# every server on its own loopback port with a fresh data directory, and runs the same
# `shoal-bench` workloads against each server IN ALTERNATION (shoal, dynalite, dynoxide,
# shoal, ...) so machine noise hits all alike. `--server-pid` makes shoal-bench record each
# server's CPU time per operation, which is far steadier than throughput on a shared machine.
# Redis (`redis-benchmark`, no pipelining) is the floor for a loopback request/response
# key-value server: its SET/GET rows stand next to put/get.
#
# Output: a Markdown table on stdout and in target/bench-peers.md, the raw JSON lines in
# target/bench-peers.jsonl (also appended to the Markdown file). Every server started here is
# stopped on exit.
#
# Settings (environment variables, defaults in brackets):
#   DURATION [10s]            length of each run (shoal-bench --duration)
#   CONCURRENCY ["1 16 64"]   connections per run, one run per value
#   WORKLOADS ["put get ycsb-a ycsb-b"]
#   SERVERS ["shoal dynalite dynoxide"]   order of the alternation
#   ROUNDS [1]                repetitions of each (workload, concurrency) block; medians reported
#   ITEMS [100000]            key space, preloaded once per server before the runs
#   ITEM_SIZE [1024]          item size in bytes
#   BATCH_SIZE [25]           items per batch-write/batch-get/transact-write/transact-get request
#   REDIS [1]                 0 to skip Redis
#   REDIS_REQUESTS [200000]   requests per redis-benchmark test
#   BASE_PORT [18100]         servers listen on BASE_PORT+1 .. BASE_PORT+4
#   PEERS_CACHE [~/.cache/shoal-peers]
#   NO_BUILD [0]              1: skip `cargo build` and use the binaries already built
#   SHOAL_BIN, BENCH_BIN [target/release/shoal, target/release/shoal-bench]
#
# Example, a short run: DURATION=5s CONCURRENCY=16 scripts/bench-peers.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
WORKLOADS=${WORKLOADS:-"put get ycsb-a ycsb-b"}
SERVERS=${SERVERS:-"shoal dynalite dynoxide"}
ROUNDS=${ROUNDS:-1}
BATCH_SIZE=${BATCH_SIZE:-25}
ITEMS=${ITEMS:-100000}
ITEM_SIZE=${ITEM_SIZE:-1024}
REDIS=${REDIS:-1}
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
BASE_PORT=${BASE_PORT:-18100}
CACHE=${PEERS_CACHE:-$HOME/.cache/shoal-peers}

ACCESS_KEY_ID=AKIDSHOALPEERS
SECRET_ACCESS_KEY=shoal-peers-secret
TABLE=peers

log() { printf '[bench-peers] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/peers.sh
source "$ROOT/scripts/lib/peers.sh"

# ---------------------------------------------------------------- clean-up

# Data directories live on the same disk as the build, not on a /tmp that may be tmpfs (where
# fsync costs nothing and durable writes would look free).
mkdir -p "$ROOT/target"
WORK=$(mktemp -d "$ROOT/target/bench-peers-run.XXXXXX")
declare -A PID=() PORT=()

cleanup() {
    local name
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
    done
    for name in "${!PID[@]}"; do
        wait "${PID[$name]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- installs

install_redis() {
    command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && return 0
    apt_install redis-server redis-tools
}

# Drops a server from SERVERS when its install fails, so the rest still runs.
drop_server() {
    local gone=$1 s kept=""
    for s in $SERVERS; do [ "$s" = "$gone" ] || kept="$kept $s"; done
    SERVERS=${kept# }
}

# ---------------------------------------------------------------- servers

wait_port() {
    local name=$1 port=$2 i
    for i in $(seq 1 300); do
        port_open "$port" && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start listening on 127.0.0.1:$port; its log:"
    cat "$WORK/$name.log" >&2 || true
    exit 1
}

start_server() {
    local name=$1 port=$2
    if port_open "$port"; then
        log "port $port is already in use (set BASE_PORT)"
        exit 1
    fi
    mkdir -p "$WORK/$name-data"
    case $name in
        shoal)
            SHOAL_ADMIN_ACCESS_KEY_ID=$ACCESS_KEY_ID SHOAL_ADMIN_SECRET_ACCESS_KEY=$SECRET_ACCESS_KEY \
                "$SHOAL_BIN" start --listen "127.0.0.1:$port" --data-dir "$WORK/$name-data" --keys-dir "$WORK/$name-keys" \
                >"$WORK/$name.log" 2>&1 &
            ;;
        dynalite)
            # --path: LevelDB on disk rather than in memory, closer to the others' durability.
            node "$DYNALITE_CLI" --host 127.0.0.1 --port "$port" --path "$WORK/$name-data" \
                --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$WORK/$name.log" 2>&1 &
            ;;
        dynoxide)
            "$DYNOXIDE_BIN" serve --host 127.0.0.1 --port "$port" --db-path "$WORK/$name-data/db.sqlite" \
                >"$WORK/$name.log" 2>&1 &
            ;;
        redis)
            # In memory, no persistence: the floor, not a like-for-like database.
            redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
                --dir "$WORK/$name-data" >"$WORK/$name.log" 2>&1 &
            ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    wait_port "$name" "$port"
    log "$name listening on 127.0.0.1:$port (pid ${PID[$name]})"
}

# ---------------------------------------------------------------- runs

RAW_LINES=$WORK/raw.jsonl
: >"$RAW_LINES"

# Runs shoal-bench against server $1 with extra flags; appends its JSON line tagged with the
# server and the round to the raw file. A failed run is logged and skipped.
bench() {
    local name=$1 round=$2
    shift 2
    local line
    if ! line=$("$BENCH_BIN" --endpoint "http://127.0.0.1:${PORT[$name]}" \
        --access-key-id "$ACCESS_KEY_ID" --secret-access-key "$SECRET_ACCESS_KEY" \
        --table "$TABLE" --items "$ITEMS" --item-size "$ITEM_SIZE" \
        --batch-size "$BATCH_SIZE" \
        --server-pid "${PID[$name]}" "$@" 2>>"$WORK/bench-$name.log" | tail -n 1) ||
        ! jq -e . >/dev/null 2>&1 <<<"$line"; then
        log "run failed on $name ($*); tail of its bench log:"
        tail -n 5 "$WORK/bench-$name.log" >&2 || true
        return 0
    fi
    jq -c --arg s "$name" --argjson r "$round" '. + {server: $s, round: $r}' <<<"$line" >>"$RAW_LINES"
}

# One redis-benchmark test (set or get) at concurrency $1, recorded like a shoal-bench line.
redis_run() {
    local conc=$1 test=$2 round=$3 before after csv
    before=$(cpu_ticks "${PID[redis]}")
    csv=$(redis-benchmark -h 127.0.0.1 -p "${PORT[redis]}" -t "$test" -d "$ITEM_SIZE" \
        -c "$conc" -n "$REDIS_REQUESTS" -r "$ITEMS" -P 1 --csv 2>>"$WORK/bench-redis.log" | tail -n 1)
    after=$(cpu_ticks "${PID[redis]}")
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    jq -c -R --arg w "$([ "$test" = set ] && echo put || echo get)" --argjson c "$conc" \
        --argjson r "$round" --argjson n "$REDIS_REQUESTS" \
        --argjson cpu "$(((after - before) * 1000000 / $(getconf CLK_TCK)))" \
        'gsub("\""; "") | split(",") | {
            server: "redis", workload: $w, concurrency: $c, round: $r, ops: $n, errors: 0,
            ops_per_s: (.[1] | tonumber),
            latency_us: {p50: ((.[4] | tonumber) * 1000), p99: ((.[6] | tonumber) * 1000),
                         max: ((.[7] | tonumber) * 1000)},
            server_cpu_us_per_op: ($cpu / $n)
        }' <<<"$csv" >>"$RAW_LINES"
}

# ---------------------------------------------------------------- report

# The Markdown table from the raw lines: medians over rounds, ratios against Shoal's row.
table() {
    jq -r -s --arg servers "$SERVERS redis" --arg workloads "$WORKLOADS" '
        def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
        def fmt(d): if . == null then "—" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
        def ratio(a; b): if a == null or b == null or b == 0 then "—" else (a / b | fmt(2)) + "×" end;
        ($servers | split(" ") | map(select(. != ""))) as $order
        | ($workloads | split(" ") | map(select(. != ""))) as $worder
        | map(select(.round >= 0))
        | group_by([.workload, .concurrency, .server])
        | map({workload: .[0].workload, concurrency: .[0].concurrency, server: .[0].server,
               ops: (map(.ops_per_s) | median),
               p50: (map(.latency_us.p50) | median), p99: (map(.latency_us.p99) | median),
               cpu: (map(.server_cpu_us_per_op) | median),
               errors: (map(.errors) | add)})
        | group_by([.workload, .concurrency])
        | sort_by(.[0].workload as $w | [($worder | index($w)), .[0].concurrency])
        | map((map(select(.server == "shoal")) | first) as $shoal
              | sort_by(.server as $s | $order | index($s))
              | map("| \(.workload) | \(.concurrency) | \(.server) | \(.ops | fmt(0)) | \(.p50 | fmt(0)) | \(.p99 | fmt(0)) | \(.cpu | fmt(1)) | \(.errors) | "
                    + (if .server == "shoal" then "— | —"
                       else "\(ratio($shoal.ops; .ops)) | \(ratio(.cpu; $shoal.cpu))" end) + " |"))
        | flatten
        | (["| workload | conc | server | ops/s | p50 µs | p99 µs | server CPU µs/op | errors | Shoal/peer ops/s | peer/Shoal CPU |",
            "|---|---|---|---|---|---|---|---|---|---|"] + .)
        | .[]' "$RAW_LINES"
}

# ---------------------------------------------------------------- main

need_jq
[ -e /proc/self/stat ] || { log "needs /proc (Linux) to read server CPU time"; exit 1; }
for s in $SERVERS; do
    case $s in
        shoal) ;;
        dynalite) install_dynalite || { log "dynalite could not be installed: skipped"; drop_server dynalite; } ;;
        dynoxide) install_dynoxide || { log "Dynoxide could not be installed: skipped"; drop_server dynoxide; } ;;
        *) log "unknown server '$s' in SERVERS"; exit 1 ;;
    esac
done
if [ "$REDIS" = 1 ] && ! install_redis; then
    log "redis-server/redis-benchmark could not be installed: Redis skipped"
    REDIS=0
fi

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal -p shoal-bench >&2)
fi
# Copies, so a concurrent cargo build cannot swap the binaries mid-run.
cp "${SHOAL_BIN:-$TARGET_DIR/release/shoal}" "$WORK/shoal"
cp "${BENCH_BIN:-$TARGET_DIR/release/shoal-bench}" "$WORK/shoal-bench"
SHOAL_BIN=$WORK/shoal
BENCH_BIN=$WORK/shoal-bench

i=0
for s in $SERVERS; do
    i=$((i + 1))
    start_server "$s" $((BASE_PORT + i))
done
[ "$REDIS" = 1 ] && start_server redis $((BASE_PORT + 4))

# One preload per server (round -1, not reported): every run then reads and writes a full,
# kept table of ITEMS items.
for s in $SERVERS; do
    log "preloading $ITEMS items of $ITEM_SIZE bytes into $s"
    bench "$s" -1 --workload get --preload --keep-table --concurrency 16 --duration 1s
done
if [ "$REDIS" = 1 ]; then
    redis-benchmark -h 127.0.0.1 -p "${PORT[redis]}" -t set -d "$ITEM_SIZE" -c 16 \
        -n "$ITEMS" -r "$ITEMS" -P 16 -q >/dev/null 2>&1
fi

for w in $WORKLOADS; do
    for c in $CONCURRENCY; do
        for round in $(seq 1 "$ROUNDS"); do
            for s in $SERVERS; do
                log "$w, concurrency $c, round $round: $s"
                bench "$s" "$round" --workload "$w" --concurrency "$c" --duration "$DURATION"
            done
            if [ "$REDIS" = 1 ] && { [ "$w" = put ] || [ "$w" = get ]; }; then
                log "$w, concurrency $c, round $round: redis"
                redis_run "$c" "$([ "$w" = put ] && echo set || echo get)" "$round"
            fi
        done
    done
done

# ---------------------------------------------------------------- write

mkdir -p "$TARGET_DIR"
OUT=$TARGET_DIR/bench-peers.md
RAW=$TARGET_DIR/bench-peers.jsonl
cp "$RAW_LINES" "$RAW"
{
    echo "## Peers, $(date -u +%Y-%m-%d) ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo
    echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
        "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); servers and load generator on the same machine."
    echo "Command: \`DURATION=$DURATION CONCURRENCY=\"$CONCURRENCY\" WORKLOADS=\"$WORKLOADS\" ROUNDS=$ROUNDS ITEMS=$ITEMS ITEM_SIZE=$ITEM_SIZE scripts/bench-peers.sh\`"
    echo "Closed loop, uniform keys, ${ITEM_SIZE}-byte items, $ITEMS items preloaded; medians over $ROUNDS round(s)."
    echo "Shoal: durable writes (fsync before the answer). dynalite $DYNALITE_VERSION: LevelDB on disk."
    echo "Dynoxide $DYNOXIDE_VERSION: SQLite file. Redis: in memory, redis-benchmark -P 1 (SET for put, GET for get)."
    echo "Shoal/peer ops/s > 1 means Shoal is faster; peer/Shoal CPU > 1 means the peer spends more CPU per operation."
    echo
    table
    echo
    echo "Raw JSON lines (\`round: -1\` is the preload):"
    echo
    echo '```'
    cat "$RAW_LINES"
    echo '```'
} >"$OUT"
cat "$OUT"
log "written $OUT and $RAW"
