#!/usr/bin/env bash
# Where one node's write latency goes: the client's percentiles next to the server's own
# histograms over the same run (request duration, Raft log write + fsync, partition apply).
#
# Starts a release node on a fresh data directory, preloads ITEMS items with `shoal bench`,
# reads /metrics (with a metrics token), runs `shoal bench` with the given flags, reads /metrics
# again and prints each histogram's p50 / p99 / p99.9 bucket over the run.
#
#   scripts/bench-tail.sh --workload put --rate 1000 --concurrency 64 --duration 15s
#
# Settings (environment variables, defaults in brackets): SHOAL_BIN [release build of this
# checkout, built if missing]  ITEMS [20000]  ITEM_SIZE [1024]  PORT [18650]
# WORK [$CARGO_TARGET_DIR/bench-tail]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${SHOAL_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -p shoal --bin shoal >&2)
    SHOAL_BIN=$TARGET/release/shoal
fi
ITEMS=${ITEMS:-20000}
ITEM_SIZE=${ITEM_SIZE:-1024}
PORT=${PORT:-18650}
WORK=${WORK:-$TARGET/bench-tail}
[ $# -gt 0 ] || set -- --workload put --rate 1000 --concurrency 64 --duration 15s

rm -rf "$WORK"
mkdir -p "$WORK"
SHOAL_ADMIN_ACCESS_KEY_ID=AKIDSHOALTAIL SHOAL_ADMIN_SECRET_ACCESS_KEY=shoal-tail-secret \
    "$SHOAL_BIN" start --listen "127.0.0.1:$PORT" --cluster-listen "127.0.0.1:$((PORT + 100))" \
    --data-dir "$WORK/data" --keys-dir "$WORK/keys" --metrics-token tail-token \
    >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
    curl -s "127.0.0.1:$PORT/" | grep -q healthy && break
    sleep 0.1
done
bench() {
    "$SHOAL_BIN" bench --endpoint "http://127.0.0.1:$PORT" --access-key-id AKIDSHOALTAIL \
        --secret-access-key shoal-tail-secret --table tailbench --keep-table \
        --items "$ITEMS" --item-size "$ITEM_SIZE" "$@"
}
bench --workload get --preload --concurrency 16 --duration 1s >"$WORK/preload.log" 2>&1
sleep 2
scrape() { curl -sf -H "Authorization: Bearer tail-token" "127.0.0.1:$PORT/metrics" >"$1"; }
scrape "$WORK/before.txt"
bench "$@" 2>"$WORK/bench.log" | tail -n 1 >"$WORK/bench.json"
scrape "$WORK/after.txt"

python3 - "$WORK" <<'PY'
import json, re, sys
work = sys.argv[1]

def load(path):
    out = {}
    for line in open(path):
        m = re.match(r'(\w+)(\{[^}]*\})? (\S+)', line)
        if m and not line.startswith('#'):
            out[(m.group(1), m.group(2) or '')] = float(m.group(3))
    return out

before, after = load(f'{work}/before.txt'), load(f'{work}/after.txt')

def quantiles(name, label=''):
    buckets = {}
    for (n, labels), v in after.items():
        if n == f'{name}_bucket' and label in labels:
            le = re.search(r'le="([^"]+)"', labels).group(1)
            le = float('inf') if le == '+Inf' else float(le)
            buckets[le] = buckets.get(le, 0) + v - before.get((n, labels), 0)
    cum = sorted(buckets.items())
    total = cum[-1][1] if cum else 0
    parts = []
    for q in (0.5, 0.99, 0.999):
        le = next((le for le, v in cum if v >= q * total), float('inf'))
        parts.append(f'p{q * 100:g} <= {le * 1000:g} ms')
    return f'{name}{" " + label if label else ""}: {total:.0f} observations, ' + ', '.join(parts)

line = json.load(open(f'{work}/bench.json'))
lat = line['latency_us']
print(f"client: {line['ops_per_s']:.0f} ops/s, p50 {lat['p50'] / 1000:.2f} ms, "
      f"p99 {lat['p99'] / 1000:.2f} ms, p99.9 {lat['p999'] / 1000:.2f} ms")
print(quantiles('shoal_request_duration_seconds', 'operation="PutItem"'))
print(quantiles('shoal_raft_log_fsync_duration_seconds'))
print(quantiles('shoal_raft_apply_duration_seconds'))
PY
