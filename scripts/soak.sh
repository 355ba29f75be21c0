#!/usr/bin/env bash
# Memory and liveness soak (issue #12): builds the release binary, starts one node on
# 127.0.0.1, floods it for SOAK_SECS seconds (default 120) with unsigned 15 MiB bodies, signed
# ~10 MiB requests, slowloris heads, trickled bodies and idle sockets (scripts/soak.py), while a
# prober checks that small valid requests keep being answered. Fails if the node's RSS reaches
# SOAK_MAX_RSS_MIB (default 1024) or a probe goes unanswered. Prints a summary.
#
#   scripts/soak.sh                 # the full 2 minutes
#   SOAK_SECS=20 scripts/soak.sh    # a short run
#   SOAK_PROFILE=debug SOAK_SECS=15 scripts/soak.sh    # CI's run, on the debug binary
#
# Extra node flags can be passed in SOAK_NODE_ARGS (e.g. "--max-body-bytes-in-flight 67108864"),
# extra load-generator flags in SOAK_PY_ARGS (see `python3 scripts/soak.py --help`).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}"
SOAK_SECS="${SOAK_SECS:-120}"
SOAK_MAX_RSS_MIB="${SOAK_MAX_RSS_MIB:-1024}"

# SOAK_PROFILE=debug soaks the debug binary (what `cargo test` builds: CI's short run, without a
# release build); the default is the release binary. SOAK_SKIP_BUILD=1: it is already built (e.g.
# under a build lock).
SOAK_PROFILE="${SOAK_PROFILE:-release}"
if [ -z "${SOAK_SKIP_BUILD:-}" ]; then
    if [ "$SOAK_PROFILE" = debug ]; then
        cargo build -p shoal --quiet
    else
        cargo build --release -p shoal --quiet
    fi
fi
BIN="$CARGO_TARGET_DIR/$SOAK_PROFILE/shoal"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
KEY_ID=AKIDSOAK000000000001
SECRET=soak-secret-0000000000000000000000000000
NODE_PID=""
cleanup() {
    if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

SHOAL_ADMIN_ACCESS_KEY_ID=$KEY_ID SHOAL_ADMIN_SECRET_ACCESS_KEY=$SECRET SHOAL_LOG=warn \
    "$BIN" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --keys-dir "$WORK/keys" \
    ${SOAK_NODE_ARGS:-} > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 200); do
    if python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$PORT),1); s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n'); sys.exit(0 if b'healthy' in s.recv(4096) else 1)" 2>/dev/null; then
        break
    fi
    kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/node.log"; exit 1; }
    sleep 0.1
done

echo "soak: node pid $NODE_PID on 127.0.0.1:$PORT, ${SOAK_SECS}s of load, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
STATUS=0
python3 scripts/soak.py --endpoint "127.0.0.1:$PORT" --pid "$NODE_PID" --key-id "$KEY_ID" \
    --secret "$SECRET" --secs "$SOAK_SECS" --max-rss-mib "$SOAK_MAX_RSS_MIB" ${SOAK_PY_ARGS:-} || STATUS=$?
if ! kill -0 "$NODE_PID" 2>/dev/null; then
    echo "soak: FAIL: the node died"; tail -50 "$WORK/node.log"; exit 1
fi
if grep -qi "panicked" "$WORK/node.log"; then
    echo "soak: FAIL: the node panicked"; grep -i -A5 panicked "$WORK/node.log" | head -40; exit 1
fi
exit $STATUS
