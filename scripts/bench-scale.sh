#!/usr/bin/env bash
# Does capacity grow with the number of nodes? The same write load on 3 and then 6 nodes
# (docs/PERFORMANCE.md, "Scale-out").
#
# For each cluster size: TABLES tables (one partition each, placed on 3 nodes by Shoal), then
# one open-loop PutItem stream per table (RATE puts/s in all, spread over the tables, sent through
# every node in turn) for DURATION. For each node it reports the Raft entries it applied (the
# commit-index growth of the partition groups it holds a replica of), its share of the writes,
# and its CPU time per write. With N nodes each node should apply about 3/N of the writes: that
# is what makes capacity grow with N. All nodes and load generators share this machine's cores,
# so compare shares and CPU per write, not absolute throughput.
#
# Output: a Markdown table on stdout and in target/bench-scale.md.
#
# Settings (environment variables, defaults in brackets):
#   SIZES ["3 6"]  TABLES [12]  RATE [600]  DURATION [20s]  ITEM_SIZE [512]  PORT [18450]
#   NO_BUILD [0]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-"3 6"}
TABLES=${TABLES:-12}
RATE=${RATE:-600}
DURATION=${DURATION:-20s}
ITEM_SIZE=${ITEM_SIZE:-512}
PORT=${PORT:-18450}
AK=AKIDSHOALBENCH
SK=shoal-bench-secret
TICK=$(getconf CLK_TCK)

log() { printf '[bench-scale] %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "jq is required"; exit 1; }
command -v curl >/dev/null || { log "curl is required"; exit 1; }

TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal >&2)
fi
WORK=$(mktemp -d "$TARGET_DIR/bench-scale-run.XXXXXX")
cp "$TARGET_DIR/release/shoal" "$WORK/"
SHOAL=$WORK/shoal
PIDS=()
OUT=$WORK/report.md
: >"$OUT"

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
    NODE_PID[$n]=$!
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

status() { curl -s "http://127.0.0.1:$((PORT + 1))/status"; }

# cpu_ticks PID: user + system CPU time of the process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# applied_per_node: "node entries" lines, the commit index of every partition group summed over
# the nodes holding a voting replica of it.
applied_per_node() {
    status | jq -r '[.groups[] | select(.kind == "partition") | .commit as $c | .voters[] | {node: ., c: $c}]
        | group_by(.node) | .[] | "\(.[0].node) \(map(.c) | add)"'
}

bench() {
    "$SHOAL" bench --endpoint "http://127.0.0.1:$((PORT + $1))" --access-key-id "$AK" \
        --secret-access-key "$SK" --table "$2" --item-size "$ITEM_SIZE" --items 2000 \
        --keep-table "${@:3}" 2>>"$WORK/bench.log" | tail -n 1
}

for n in $SIZES; do
    SETUP=n$n
    mkdir -p "$WORK/$SETUP"
    declare -A NODE_PID=()
    start_node 1
    TOKEN=$("$SHOAL" cluster join-token --data-dir "$WORK/$SETUP/d1" --keys-dir "$WORK/$SETUP/k1")
    for i in $(seq 2 "$n"); do
        start_node "$i" --join "127.0.0.1:$((PORT + 101))" --join-token "$TOKEN"
    done
    for i in $(seq 1 100); do
        members=$(status | jq '.nodes | length')
        [ "$members" = "$n" ] && break
        sleep 0.2
    done
    log "$n nodes: creating $TABLES tables"
    for t in $(seq 1 "$TABLES"); do
        bench $(((t - 1) % n + 1)) "scale$t" --workload put --preload --concurrency 4 --duration 1s >/dev/null
    done
    # Placement settles: every partition with 3 voters, no learners.
    for i in $(seq 1 300); do
        settled=$(status | jq --argjson t "$TABLES" '[.groups[] | select(.kind == "partition")
            | select((.voters | length) == 3 and (.learners | length) == 0)] | length == $t')
        [ "$settled" = true ] && break
        sleep 0.2
    done
    status | jq -r '[.groups[] | select(.kind == "partition") | .voters[]] | group_by(.) | map("node \(.[0]): \(length) replicas") | .[]' >&2
    declare -A CPU0=() APPLIED0=()
    for i in $(seq 1 "$n"); do CPU0[$i]=$(cpu_ticks "${NODE_PID[$i]}"); done
    while read -r node c; do APPLIED0[$node]=$c; done < <(applied_per_node)
    log "$n nodes: $RATE puts/s over $TABLES tables for $DURATION"
    per_table=$(( (RATE + TABLES - 1) / TABLES ))
    loads=()
    for t in $(seq 1 "$TABLES"); do
        bench $(((t - 1) % n + 1)) "scale$t" --workload put --rate "$per_table" --concurrency 8 \
            --duration "$DURATION" >"$WORK/$SETUP/load$t.json" &
        loads+=($!)
    done
    for p in "${loads[@]}"; do wait "$p"; done
    sleep 1
    writes=0
    errors=0
    for t in $(seq 1 "$TABLES"); do
        writes=$((writes + $(jq '.ops' "$WORK/$SETUP/load$t.json")))
        errors=$((errors + $(jq '.errors' "$WORK/$SETUP/load$t.json")))
    done
    {
        echo
        echo "**$n nodes**: $writes writes acknowledged ($errors errors), $TABLES tables, $RATE puts/s offered."
        echo
        echo "| Node | Replicas | Writes applied | Share of writes | CPU s | CPU µs per write (cluster's writes) |"
        echo "|---|---|---|---|---|---|"
    } >>"$OUT"
    declare -A APPLIED1=()
    while read -r node c; do APPLIED1[$node]=$c; done < <(applied_per_node)
    replicas=$(status | jq -c '[.groups[] | select(.kind == "partition") | .voters[]] | group_by(.) | map({key: (.[0] | tostring), value: length}) | from_entries')
    for i in $(seq 1 "$n"); do
        cpu=$(($(cpu_ticks "${NODE_PID[$i]}") - ${CPU0[$i]}))
        applied=$(( ${APPLIED1[$i]:-0} - ${APPLIED0[$i]:-0} ))
        awk -v i="$i" -v r="$(jq -r --arg i "$i" '.[$i] // 0' <<<"$replicas")" -v a="$applied" \
            -v w="$writes" -v c="$cpu" -v tick="$TICK" 'BEGIN {
                printf "| %d | %d | %d | %.0f%% | %.2f | %.0f |\n", i, r, a, (w ? 100 * a / w : 0),
                    c / tick, (w ? 1e6 * c / tick / w : 0) }' >>"$OUT"
    done
    stop_all
    unset NODE_PID CPU0 APPLIED0 APPLIED1
done

{
    echo "Shares: each write is applied by the 3 replicas of its partition, so with N nodes a node"
    echo "applies about 3/N of the writes (100% on 3 nodes, 50% on 6). Entries include a few Raft"
    echo "entries per group that are not writes (leader changes, membership)."
    cat "$OUT"
} | tee "$TARGET_DIR/bench-scale.md"
