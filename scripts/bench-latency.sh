#!/usr/bin/env bash
# Write and read latency against the disk's floor and the peers (issue #15's table), in one run.
#
# Starts four setups side by side on this machine: Shoal on one node, Shoal on three nodes
# (joined by a join token; the client talks to a node that does NOT lead the table's
# partition, so every write is forwarded and every consistent read asks the leader), dynalite
# (in memory) and Dynoxide (a SQLite file). Installs the peers itself (dynalite from npm,
# Dynoxide with cargo install; see scripts/lib/peers.sh). Then runs each measurement against
# each setup IN ALTERNATION, ROUNDS times (medians reported), with `shoal bench`:
#   - PutItem, open loop at PUT_RATE/s: p50 / p99 (latency from each request's scheduled time),
#     and the server's CPU per put (all of a setup's processes; the cluster's divided by 3:
#     one node's share);
#   - PutItem, closed loop at 64 and at 16 connections: throughput and p99;
#   - GetItem, open loop at GET_RATE/s: p50 / p99 and CPU per get;
#   - ConsistentRead GetItem, closed loop at 64 connections: throughput and CPU per get;
#   - idle CPU: each setup's processes over IDLE_SECS with no requests, in % of one core.
# Before the runs it measures the disk's floor: fdatasync of 4 KiB, p50 and p99, on the disk
# that holds the data directories.
#
# Output: the table on stdout and in $CARGO_TARGET_DIR/bench-latency.md, the raw JSON lines in
# bench-latency.jsonl next to it. With WRITE_DOC=1 (the default) the table also replaces the
# section between the bench-latency markers in docs/PERFORMANCE.md, with the date, the commit,
# the machine and the command.
#
# Settings (environment variables, defaults in brackets):
#   ROUNDS [2]  DURATION [10s]  ITEMS [20000]  ITEM_SIZE [1024]  PUT_RATE [1000]
#   GET_RATE [5000]  IDLE_SECS [10]  BASE_PORT [18400]  PEERS_CACHE [~/.cache/shoal-peers]
#   SETUPS ["shoal1 shoal3 dynalite dynoxide"]  WRITE_DOC [1]
#   NO_BUILD [0]: use the release binaries already built; SHOAL_BIN: another shoal build to
#   measure (implies NO_BUILD; `shoal bench` is taken from it too).
#
# Example, a short run: ROUNDS=1 DURATION=5s WRITE_DOC=0 scripts/bench-latency.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
ITEMS=${ITEMS:-20000}
ITEM_SIZE=${ITEM_SIZE:-1024}
PUT_RATE=${PUT_RATE:-1000}
GET_RATE=${GET_RATE:-5000}
IDLE_SECS=${IDLE_SECS:-10}
BASE_PORT=${BASE_PORT:-18400}
SETUPS=${SETUPS:-"shoal1 shoal3 dynalite dynoxide"}
WRITE_DOC=${WRITE_DOC:-1}
CACHE=${PEERS_CACHE:-$HOME/.cache/shoal-peers}
AK=AKIDSHOALLATENCY
SK=shoal-latency-secret
TABLE=latency
COMMAND="ROUNDS=$ROUNDS DURATION=$DURATION scripts/bench-latency.sh"

log() { printf '[bench-latency] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/peers.sh
source "$ROOT/scripts/lib/peers.sh"

need_jq
[ -e /proc/self/stat ] || { log "needs /proc (Linux) to read CPU time"; exit 1; }
for s in $SETUPS; do
    case $s in
    shoal1 | shoal3) ;;
    dynalite) install_dynalite || { log "dynalite could not be installed"; exit 1; } ;;
    dynoxide) install_dynoxide || { log "Dynoxide could not be installed"; exit 1; } ;;
    *) log "unknown setup '$s' in SETUPS"; exit 1 ;;
    esac
done

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${SHOAL_BIN:-}" ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal >&2)
fi
# The data directories live on the build's disk, not on a /tmp that may be tmpfs.
mkdir -p "$TARGET_DIR"
WORK=$(mktemp -d "$TARGET_DIR/bench-latency-run.XXXXXX")
cp "${SHOAL_BIN:-$TARGET_DIR/release/shoal}" "$WORK/shoal"
SHOAL=$WORK/shoal
declare -A ENDPOINT=() PIDS=()
ALL_PIDS=()
RAW=$WORK/raw.jsonl
: >"$RAW"

cleanup() {
    for p in "${ALL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# started NAME PORT PID: records a server process and waits for its port.
started() {
    local name=$1 port=$2 pid=$3 i
    ALL_PIDS+=("$pid")
    PIDS[$name]="${PIDS[$name]:-} $pid"
    for i in $(seq 1 300); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start listening on 127.0.0.1:$port; its log:"
    cat "$WORK/$name"*.log >&2 || true
    exit 1
}

# shoal_node SETUP N [flags...]: node N of SETUP on API port BASE_PORT+off+N, cluster port +100.
shoal_node() {
    local setup=$1 n=$2 off=$3
    shift 3
    local port=$((BASE_PORT + off + n))
    mkdir -p "$WORK/$setup"
    SHOAL_ADMIN_ACCESS_KEY_ID=$AK SHOAL_ADMIN_SECRET_ACCESS_KEY=$SK \
        "$SHOAL" start --listen "127.0.0.1:$port" --cluster-listen "127.0.0.1:$((port + 100))" \
        --data-dir "$WORK/$setup/d$n" --keys-dir "$WORK/$setup/k$n" "$@" \
        >>"$WORK/$setup-n$n.log" 2>&1 &
    started "$setup" "$port" $!
}

start_setup() {
    local s=$1 port
    case $s in
    shoal1)
        shoal_node shoal1 1 0
        ENDPOINT[$s]=$((BASE_PORT + 1))
        ;;
    shoal3)
        shoal_node shoal3 1 10
        local token
        token=$("$SHOAL" cluster join-token --data-dir "$WORK/shoal3/d1" --keys-dir "$WORK/shoal3/k1")
        shoal_node shoal3 2 10 --join "127.0.0.1:$((BASE_PORT + 111))" --join-token "$token"
        shoal_node shoal3 3 10 --join "127.0.0.1:$((BASE_PORT + 111))" --join-token "$token"
        local i voters
        for i in $(seq 1 150); do
            voters=$(curl -s "http://127.0.0.1:$((BASE_PORT + 11))/status" |
                jq '[.groups[] | select(.group == 0) | .voters | length] | first // 0')
            [ "$voters" = 3 ] && break
            sleep 0.2
        done
        ENDPOINT[$s]=$((BASE_PORT + 11))
        ;;
    dynalite)
        port=$((BASE_PORT + 21))
        node "$DYNALITE_CLI" --host 127.0.0.1 --port "$port" \
            --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$WORK/dynalite.log" 2>&1 &
        started dynalite "$port" $!
        ENDPOINT[$s]=$port
        ;;
    dynoxide)
        port=$((BASE_PORT + 31))
        mkdir -p "$WORK/dynoxide"
        "$DYNOXIDE_BIN" serve --host 127.0.0.1 --port "$port" --db-path "$WORK/dynoxide/db.sqlite" \
            >"$WORK/dynoxide.log" 2>&1 &
        started dynoxide "$port" $!
        ENDPOINT[$s]=$port
        ;;
    esac
    log "$s listening on 127.0.0.1:${ENDPOINT[$s]} (pids${PIDS[$s]})"
}

# Sum of the CPU ticks of a setup's processes.
setup_ticks() {
    local p sum=0
    for p in ${PIDS[$1]}; do sum=$((sum + $(cpu_ticks "$p"))); done
    echo "$sum"
}

nodes_of() { set -- ${PIDS[$1]}; echo $#; }

# run METRIC SETUP ROUND [shoal bench flags...]: one run, recorded with the setup's CPU per
# operation (per node: the sum over its processes divided by their number).
run() {
    local metric=$1 s=$2 round=$3 before after line
    shift 3
    before=$(setup_ticks "$s")
    if ! line=$("$SHOAL" bench --endpoint "http://127.0.0.1:${ENDPOINT[$s]}" \
        --access-key-id "$AK" --secret-access-key "$SK" --table "$TABLE" --keep-table \
        --items "$ITEMS" --item-size "$ITEM_SIZE" "$@" 2>>"$WORK/bench-$s.log" | tail -n 1) ||
        ! jq -e . >/dev/null 2>&1 <<<"$line"; then
        log "run failed on $s ($metric); tail of its bench log:"
        tail -n 5 "$WORK/bench-$s.log" >&2 || true
        return 0
    fi
    after=$(setup_ticks "$s")
    jq -c --arg m "$metric" --arg s "$s" --argjson r "$round" --argjson n "$(nodes_of "$s")" \
        --argjson cpu "$(((after - before) * 1000000 / $(getconf CLK_TCK)))" \
        '. + {metric: $m, setup: $s, round: $r,
              cpu_us_per_op_per_node: (if .ops > 0 then $cpu / .ops / $n else null end)}' \
        <<<"$line" | tee -a "$RAW" >&2
}

# The client of the 3-node setup talks to a node that does not lead the table's partition.
pick_follower() {
    local leader i
    for i in $(seq 1 50); do
        leader=$(curl -s "http://127.0.0.1:$((BASE_PORT + 11))/status" |
            jq "[.groups[] | select(.table == \"$TABLE\") | .leader] | first // 0")
        [ "$leader" != 0 ] && [ "$leader" != null ] && break
        sleep 0.2
    done
    local n=2
    [ "$leader" = 2 ] && n=3
    ENDPOINT[shoal3]=$((BASE_PORT + 10 + n))
    log "shoal3: the table's partition leader is node $leader; the client talks to node $n"
}

# fdatasync of 4 KiB on the data directories' disk: p50 and p99 in µs.
disk_floor() {
    python3 - "$WORK" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
block = os.urandom(4096)
samples = []
for i in range(2000):
    os.pwrite(fd, block, (i % 256) * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    samples.append((time.perf_counter() - t) * 1e6)
os.close(fd)
os.unlink(path)
samples.sort()
print(f"{samples[len(samples) // 2]:.0f} {samples[int(len(samples) * 0.99)]:.0f}")
PY
}

# ---------------------------------------------------------------- runs

read -r FLOOR_P50 FLOOR_P99 < <(disk_floor)
log "disk floor: fdatasync of 4 KiB p50 ${FLOOR_P50} µs, p99 ${FLOOR_P99} µs"

for s in $SETUPS; do start_setup "$s"; done
for s in $SETUPS; do
    log "preloading $ITEMS items of $ITEM_SIZE bytes into $s"
    run preload "$s" -1 --workload get --preload --concurrency 16 --duration 1s
    [ "$s" = shoal3 ] && pick_follower
done

sleep 3
for s in $SETUPS; do
    before=$(setup_ticks "$s")
    sleep "$IDLE_SECS"
    after=$(setup_ticks "$s")
    jq -nc --arg s "$s" --argjson n "$(nodes_of "$s")" \
        --argjson pct "$(((after - before) * 100000 / $(getconf CLK_TCK) / IDLE_SECS))" \
        '{metric: "idle", setup: $s, round: 1, idle_pct_per_node: ($pct / 1000 / $n)}' | tee -a "$RAW" >&2
done

METRICS="put-open put-64 put-16 get-open getc-64"
for round in $(seq 1 "$ROUNDS"); do
    for m in $METRICS; do
        for s in $SETUPS; do
            log "round $round, $m: $s"
            case $m in
            put-open) run "$m" "$s" "$round" --workload put --rate "$PUT_RATE" --concurrency 64 --duration "$DURATION" ;;
            put-64) run "$m" "$s" "$round" --workload put --concurrency 64 --duration "$DURATION" ;;
            put-16) run "$m" "$s" "$round" --workload put --concurrency 16 --duration "$DURATION" ;;
            get-open) run "$m" "$s" "$round" --workload get --rate "$GET_RATE" --concurrency 64 --duration "$DURATION" ;;
            getc-64) run "$m" "$s" "$round" --workload get --consistent --concurrency 64 --duration "$DURATION" ;;
            esac
        done
    done
done

# ---------------------------------------------------------------- report

table() {
    jq -r -s --arg setups "$SETUPS" --arg put_rate "$PUT_RATE" --arg get_rate "$GET_RATE" '
        def median: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
        def ms: if . == null then "—" else (. / 1000 * 100 | round / 100 | tostring) end;
        def n0: if . == null then "—" else (round | tostring) end;
        def n1: if . == null then "—" else (. * 10 | round / 10 | tostring) end;
        def names: {shoal1: "Shoal 1 node", shoal3: "Shoal 3 nodes (client on a follower)",
                    dynalite: "dynalite (in memory)", dynoxide: "Dynoxide (SQLite file)"};
        ($setups | split(" ") | map(select(. != ""))) as $order
        | map(select(.round >= 0))
        | group_by([.metric, .setup])
        | map({key: "\(.[0].metric)|\(.[0].setup)",
               value: {ops: (map(.ops_per_s) | median), p50: (map(.latency_us.p50) | median),
                       p99: (map(.latency_us.p99) | median),
                       cpu: (map(.cpu_us_per_op_per_node) | median),
                       idle: (map(.idle_pct_per_node) | median)}})
        | from_entries as $m
        | def cell(metric; f): [$order[] | ($m["\(metric)|\(.)"] // {}) | f];
          def row(title; cells): "| \(title) | \(cells | join(" | ")) |";
          [row(""; [$order[] | names[.]]),
           "|---|" + ([$order[] | "---"] | join("|")) + "|",
           row("PutItem, open loop \($put_rate)/s: p50 / p99 ms"; cell("put-open"; "\(.p50 | ms) / \(.p99 | ms)")),
           row("Server CPU per PutItem at \($put_rate)/s (µs, per node)"; cell("put-open"; .cpu | n0)),
           row("PutItem, closed loop, 64 connections: ops/s, p99 ms"; cell("put-64"; "\(.ops | n0), \(.p99 | ms)")),
           row("Server CPU per PutItem at 64 connections (µs, per node)"; cell("put-64"; .cpu | n0)),
           row("PutItem, 16 connections: ops/s, p99 ms"; cell("put-16"; "\(.ops | n0), \(.p99 | ms)")),
           row("GetItem, open loop \($get_rate)/s: p50 / p99 ms"; cell("get-open"; "\(.p50 | ms) / \(.p99 | ms)")),
           row("Server CPU per GetItem at \($get_rate)/s (µs, per node)"; cell("get-open"; .cpu | n0)),
           row("ConsistentRead GetItem, 64 connections: ops/s"; cell("getc-64"; .ops | n0)),
           row("Idle CPU (% of a core, per node)"; cell("idle"; .idle | n1))]
        | .[]' "$RAW"
}

RESULT=$(table)
OUT=$TARGET_DIR/bench-latency.md
COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(($(grep MemTotal /proc/meminfo | awk '{print $2}') / 1048576)) GiB"
{
    echo "Measured $(date -u +%Y-%m-%d) on commit $COMMIT, $MACHINE; the load generator and every"
    echo "server share those cores. Command: \`$COMMAND\`. The disk's floor in the same run: fdatasync"
    echo "of 4 KiB p50 ${FLOOR_P50} µs, p99 ${FLOOR_P99} µs. Medians of $ROUNDS rounds, setups alternating."
    echo
    echo "$RESULT"
} >"$OUT"
cp "$RAW" "$TARGET_DIR/bench-latency.jsonl"
cat "$OUT"

if [ "$WRITE_DOC" = 1 ]; then
    python3 - "$ROOT/docs/PERFORMANCE.md" "$OUT" <<'PY'
import sys
doc, out = sys.argv[1], sys.argv[2]
start, end = "<!-- bench-latency:start -->", "<!-- bench-latency:end -->"
text = open(doc).read()
body = open(out).read().rstrip("\n")
if start not in text or end not in text:
    sys.exit(f"{doc} has no {start} ... {end} section")
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(f"{head}{start}\n{body}\n{end}{tail}")
PY
    log "docs/PERFORMANCE.md updated"
fi
