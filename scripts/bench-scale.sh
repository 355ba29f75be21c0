#!/usr/bin/env bash
# Does capacity grow with the number of nodes? The same write load on 3 and then 6 nodes
# (docs/PERFORMANCE.md, "Scale-out"; issue #13).
#
# Default (TABLES=1): ONE table. The nodes run with a small split size (SPLIT_SIZE), and the
# table is preloaded with ITEMS items of ITEM_SIZE bytes, about 12x the split size, so it splits
# by itself (1 -> 2 -> 4 -> 8 -> 16 partitions) and placement spreads the halves over the nodes
# (one replica move every ~2 s). The run starts once placement has settled: every partition has
# 3 voters and no learner, no move is pending, no partition is over the split size, no two nodes
# differ by more than one replica, and that stays so for SETTLE_STABLE seconds.
# With TABLES=N (N > 1), the older set-up: N tables of one partition each (no split size unless
# SPLIT_SIZE is set), and one stream per table.
#
# The measured run: STREAMS open-loop PutItem streams (RATE puts/s in all, over the same ITEMS
# keys, so the table does not grow; stream s goes through node s, s+1, ... in turn) for
# DURATION. For each node it reports the Raft entries it applied (the commit-index growth of the
# partition groups it holds a voting replica of), its share of the cluster's writes, and its CPU
# time per cluster write. With N nodes each node should apply about 3/N of the writes: that is
# what makes capacity grow with N. All nodes and load generators share this machine's cores, so
# compare shares and CPU per write, not absolute throughput.
#
# Output: a Markdown table on stdout and in target/bench-scale.md.
#
# Settings (environment variables, defaults in brackets):
#   SIZES ["3 6"]  TABLES [1]  STREAMS [6 with one table, else TABLES]  RATE [600]
#   DURATION [20s]  ITEM_SIZE [512]  ITEMS [8000 with one table, else 2000]
#   SPLIT_SIZE [327680 with one table, else unset: the node default]  SETTLE_TIMEOUT [300]
#   SETTLE_STABLE [6]  PORT [18450]  NO_BUILD [0]
#   SHOAL_BIN [unset: target/release/shoal]  BENCH_BIN [unset: `shoal bench`; else a shoal-bench
#   binary]  KEEP_LOGS [unset: a directory to copy the node logs into]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-"3 6"}
TABLES=${TABLES:-1}
if [ "$TABLES" = 1 ]; then
    STREAMS=${STREAMS:-6}
    ITEMS=${ITEMS:-8000}
    SPLIT_SIZE=${SPLIT_SIZE:-327680}
else
    STREAMS=${STREAMS:-$TABLES}
    ITEMS=${ITEMS:-2000}
    SPLIT_SIZE=${SPLIT_SIZE:-}
fi
RATE=${RATE:-600}
DURATION=${DURATION:-20s}
ITEM_SIZE=${ITEM_SIZE:-512}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-300}
SETTLE_STABLE=${SETTLE_STABLE:-6}
PORT=${PORT:-18450}
AK=AKIDSHOALBENCH
SK=shoal-bench-secret
TICK=$(getconf CLK_TCK)

log() { printf '[bench-scale] %s\n' "$*" >&2; }
command -v jq >/dev/null || { log "jq is required"; exit 1; }
command -v curl >/dev/null || { log "curl is required"; exit 1; }

if [ -n "${SHOAL_BIN:-}" ]; then
    TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
else
    TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
    SHOAL_BIN=$TARGET_DIR/release/shoal
fi
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building Shoal (release)"
    (cd "$ROOT" && cargo build --release -p shoal >&2)
fi
mkdir -p "$TARGET_DIR"
WORK=$(mktemp -d "$TARGET_DIR/bench-scale-run.XXXXXX")
cp "$SHOAL_BIN" "$WORK/"
SHOAL=$WORK/$(basename "$SHOAL_BIN")
if [ -n "${BENCH_BIN:-}" ]; then
    cp "$BENCH_BIN" "$WORK/"
    BENCH=("$WORK/$(basename "$BENCH_BIN")")
else
    BENCH=("$SHOAL" bench)
fi
SPLIT_FLAGS=()
[ -n "$SPLIT_SIZE" ] && SPLIT_FLAGS=(--split-size-bytes "$SPLIT_SIZE")
PIDS=()
OUT=$WORK/report.md
: >"$OUT"

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS" && for d in "$WORK"/n*/; do
            [ -d "$d" ] || continue
            mkdir -p "$KEEP_LOGS/$(basename "$d")" && cp "$d"*.log "$KEEP_LOGS/$(basename "$d")/" 2>/dev/null || true
        done
        cp "$WORK"/bench.log "$KEEP_LOGS"/ 2>/dev/null || true
        log "logs kept in $KEEP_LOGS"
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
        --data-dir "$WORK/$SETUP/d$n" --keys-dir "$WORK/$SETUP/k$n" "${SPLIT_FLAGS[@]}" "$@" \
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

# commits: {group: commit} of every partition group.
commits() {
    jq -c '[.groups[] | select(.kind == "partition") | {key: (.group | tostring), value: .commit}] | from_entries'
}

# shape: the partition groups and their voters (changes when a partition splits or moves).
shape() {
    jq -c '[.groups[] | select(.kind == "partition") | [.group, (.voters | sort)]]'
}

# settled_now N: whether placement is at rest for N nodes (see the header).
settled_now() {
    jq --argjson n "$1" --argjson split "${SPLIT_SIZE:-0}" '
        [.groups[] | select(.kind == "partition")] as $p
        | ([.nodes[] | select(.state == "up") | .replicas]) as $r
        | ($p | length) > 0
          and (.moves | length) == 0
          and all($p[]; (.voters | length) == ([$n, 3] | min) and (.learners | length) == 0
                  and .leader != null and ($split == 0 or .bytes < $split))
          and ($r | length) == $n and (($r | max) - ($r | min)) <= 1'
}

# wait_settled N: waits until placement is at rest, SETTLE_STABLE seconds in a row.
wait_settled() {
    local start=$SECONDS last="" stable=0 s
    while :; do
        s=$(status)
        if [ "$(settled_now "$1" <<<"$s")" = true ]; then
            if [ "$(shape <<<"$s")" = "$last" ]; then
                stable=$((stable + 1))
            else
                stable=0
                last=$(shape <<<"$s")
            fi
            [ "$stable" -ge "$SETTLE_STABLE" ] && return 0
        else
            stable=0
            last=""
        fi
        if [ $((SECONDS - start)) -ge "$SETTLE_TIMEOUT" ]; then
            log "placement did not settle within ${SETTLE_TIMEOUT}s; moves and groups:"
            jq -c '{moves, nodes: [.nodes[] | {id, state, replicas}],
                groups: [.groups[] | select(.kind == "partition") | {group, voters, learners, leader, bytes}]}' <<<"$s" >&2
            return 1
        fi
        sleep 1
    done
}

# spread: "P partitions; replicas per node: 1: r (l leading), ..." from a status.
spread() {
    jq -r '[.groups[] | select(.kind == "partition")] as $p
        | "\($p | length) partitions (of \([$p[].table] | unique | length) table(s)); replicas per node: "
          + ([$p[].voters[]] | group_by(.) | map(. as $v | "node \($v[0]): \($v | length) (\([$p[] | select(.leader == $v[0])] | length) leading)") | join(", "))'
}

bench() {
    "${BENCH[@]}" --endpoint "http://127.0.0.1:$((PORT + $1))" --access-key-id "$AK" \
        --secret-access-key "$SK" --table "$2" --item-size "$ITEM_SIZE" --items "$ITEMS" \
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
    t0=$SECONDS
    log "$n nodes: creating $TABLES table(s), preloading $ITEMS items of $ITEM_SIZE bytes each${SPLIT_SIZE:+ (split size $SPLIT_SIZE bytes)}"
    for t in $(seq 1 "$TABLES"); do
        bench $(((t - 1) % n + 1)) "scale$t" --workload put --preload --concurrency 4 --duration 1s >/dev/null
    done
    wait_settled "$n" || exit 1
    settle_secs=$((SECONDS - t0))
    s=$(status)
    SPREAD=$(spread <<<"$s")
    log "$n nodes: settled ${settle_secs}s after the preload started: $SPREAD"
    SHAPE0=$(shape <<<"$s")
    COMMIT0=$(commits <<<"$s")
    declare -A CPU0=()
    for i in $(seq 1 "$n"); do CPU0[$i]=$(cpu_ticks "${NODE_PID[$i]}"); done
    log "$n nodes: $RATE puts/s in $STREAMS streams over $TABLES table(s) for $DURATION"
    per_stream=$(((RATE + STREAMS - 1) / STREAMS))
    loads=()
    for st in $(seq 1 "$STREAMS"); do
        bench $(((st - 1) % n + 1)) "scale$(((st - 1) % TABLES + 1))" --workload put \
            --rate "$per_stream" --concurrency 8 --duration "$DURATION" >"$WORK/$SETUP/load$st.json" &
        loads+=($!)
    done
    for p in "${loads[@]}"; do wait "$p"; done
    sleep 1
    declare -A CPU1=()
    for i in $(seq 1 "$n"); do CPU1[$i]=$(cpu_ticks "${NODE_PID[$i]}"); done
    s=$(status)
    writes=0
    errors=0
    for st in $(seq 1 "$STREAMS"); do
        writes=$((writes + $(jq '.ops' "$WORK/$SETUP/load$st.json")))
        errors=$((errors + $(jq '.errors' "$WORK/$SETUP/load$st.json")))
    done
    lat=$(cat "$WORK/$SETUP"/load*.json | jq -rs '"p50 \(map(.latency_us.p50) | max / 1000 | . * 10 | round / 10) ms, p99 \(map(.latency_us.p99) | max / 1000 | . * 10 | round / 10) ms (worst stream)"')
    changed=""
    if [ "$(shape <<<"$s")" != "$SHAPE0" ]; then
        changed=" **Placement changed during the run** (now: $(spread <<<"$s")): the entries below are not comparable."
        log "$n nodes: placement changed during the run"
    fi
    # Entries applied per node: each group's commit growth, counted for each of its voters.
    declare -A APPLIED=() LEADS=() REPLICAS=()
    while read -r node a r l; do
        APPLIED[$node]=$a
        REPLICAS[$node]=$r
        LEADS[$node]=$l
    done < <(jq -r --argjson c0 "$COMMIT0" '[.groups[] | select(.kind == "partition") as $g
            | $g.voters[] | {node: ., d: ($g.commit - ($c0[$g.group | tostring] // $g.commit)),
              lead: ($g.leader == .)}]
        | group_by(.node) | .[] | "\(.[0].node) \(map(.d) | add) \(length) \(map(select(.lead)) | length)"' <<<"$s")
    {
        echo
        echo "**$n nodes**: $writes writes acknowledged ($errors errors; $lat), $TABLES table(s), $RATE puts/s offered in $STREAMS streams; $SPREAD; placement settled ${settle_secs}s after the preload started.$changed"
        echo
        echo "| Node | Replicas (leading) | Writes applied | Share of writes | CPU s | CPU µs per write (cluster's writes) |"
        echo "|---|---|---|---|---|---|"
    } >>"$OUT"
    total_cpu=0
    for i in $(seq 1 "$n"); do
        cpu=$((CPU1[$i] - CPU0[$i]))
        total_cpu=$((total_cpu + cpu))
        awk -v i="$i" -v r="${REPLICAS[$i]:-0}" -v l="${LEADS[$i]:-0}" -v a="${APPLIED[$i]:-0}" \
            -v w="$writes" -v c="$cpu" -v tick="$TICK" 'BEGIN {
                printf "| %d | %d (%d) | %d | %.0f%% | %.2f | %.0f |\n", i, r, l, a, (w ? 100 * a / w : 0),
                    c / tick, (w ? 1e6 * c / tick / w : 0) }' >>"$OUT"
    done
    awk -v w="$writes" -v c="$total_cpu" -v tick="$TICK" 'BEGIN {
        printf "| all | | | | %.2f | %.0f |\n", c / tick, (w ? 1e6 * c / tick / w : 0) }' >>"$OUT"
    stop_all
    unset NODE_PID CPU0 CPU1 APPLIED LEADS REPLICAS
done

{
    echo "Shares: each write is applied by the 3 replicas of its partition, so with N nodes a node"
    echo "applies about 3/N of the writes (100% on 3 nodes, 50% on 6). Entries include a few Raft"
    echo "entries per group that are not writes (leader changes, membership)."
    cat "$OUT"
} | tee "$TARGET_DIR/bench-scale.md"
