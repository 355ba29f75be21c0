#!/usr/bin/env bash
# Browser test of the web console (crates/shoal-api/console/): starts a real node, then drives the
# console in headless Chromium with playwright-core (console.test.mjs), then in headless Firefox
# with puppeteer-core over WebDriver BiDi (firefox.test.mjs). Screenshots go to
# target/console-screenshots/.
#
#   scripts/console-test/run.sh
#
# Environment:
#   SHOAL_BIN          the shoal binary (default: $CARGO_TARGET_DIR/release/shoal, with
#                      CARGO_TARGET_DIR defaulting to ~/.cache/shoal-target)
#   CONSOLE_VIA_PROXY  1: serve the console through devproxy.py (a node that does not serve
#                      /console itself yet); default: the node serves it
#   KEEP_TMP           1: keep the node's temporary directory (its log is printed on failure anyway)
#
# Installs what it needs: Debian's chromium and firefox-esr (apt-get) when missing, and
# playwright-core and puppeteer-core (pinned in package-lock.json) into
# scripts/console-test/node_modules. Their own browser downloads are never used.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SHOAL_BIN="${SHOAL_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/shoal-target}/release/shoal}"
SHOTS="$ROOT/target/console-screenshots"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/firefox-esr ]; then
    echo "== installing Debian's chromium and firefox-esr"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium firefox-esr >/dev/null
fi
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] ||
    [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
    echo "== installing playwright-core"
    (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
        npm ci --no-audit --no-fund --loglevel=error)
fi
[ -x "$SHOAL_BIN" ] || { echo "no shoal binary at $SHOAL_BIN (set SHOAL_BIN)" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

TMP="$(mktemp -d -t shoal-console-test.XXXXXX)"
NODE_PID=""
PROXY_PID=""
cleanup() {
    local rc=$?
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
    if [ -n "$NODE_PID" ]; then
        kill "$NODE_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$TMP/node.log" ]; then
        echo "== node log (last 40 lines)"
        tail -n 40 "$TMP/node.log"
    fi
    [ "${KEEP_TMP:-}" = 1 ] && echo "kept $TMP" || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT INT TERM

PORT="$(free_port)"
CPORT="$(free_port)"
echo "== starting $SHOAL_BIN on 127.0.0.1:$PORT"
"$SHOAL_BIN" start --listen "127.0.0.1:$PORT" --cluster-listen "127.0.0.1:$CPORT" \
    --data-dir "$TMP/data" --keys-dir "$TMP/keys" >"$TMP/node.log" 2>&1 &
NODE_PID=$!

KEY_ID=""
SECRET=""
for _ in $(seq 300); do
    KEY_ID="$(sed -n 's/^ *AWS_ACCESS_KEY_ID=\(.*\)$/\1/p' "$TMP/node.log" | head -n1)"
    SECRET="$(sed -n 's/^ *AWS_SECRET_ACCESS_KEY=\(.*\)$/\1/p' "$TMP/node.log" | head -n1)"
    if [ -n "$KEY_ID" ] && [ -n "$SECRET" ] && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then
        break
    fi
    kill -0 "$NODE_PID" 2>/dev/null || { echo "the node exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$SECRET" ] || { echo "no admin key in the node's output" >&2; exit 1; }

BASE="http://127.0.0.1:$PORT"
if [ "${CONSOLE_VIA_PROXY:-}" = 1 ]; then
    PPORT="$(free_port)"
    python3 "$HERE/devproxy.py" --node "127.0.0.1:$PORT" --listen "127.0.0.1:$PPORT" >"$TMP/proxy.log" 2>&1 &
    PROXY_PID=$!
    BASE="http://127.0.0.1:$PPORT"
    for _ in $(seq 100); do curl -sf "$BASE/console/config.json" >/dev/null && break; sleep 0.1; done
    echo "== console through devproxy at $BASE"
elif ! curl -sf "$BASE/console/" | grep -q 'id="main"'; then
    echo "the node does not serve /console/ (an older binary?): rerun with CONSOLE_VIA_PROXY=1" >&2
    exit 1
fi

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
BASE_URL="$BASE" SHOAL_KEY_ID="$KEY_ID" SHOAL_SECRET="$SECRET" SCREENSHOT_DIR="$SHOTS" \
    node "$HERE/console.test.mjs"
# The same console in Firefox (stock Firefox ESR over WebDriver BiDi), on what the first run made.
BASE_URL="$BASE" SHOAL_KEY_ID="$KEY_ID" SHOAL_SECRET="$SECRET" SCREENSHOT_DIR="$SHOTS" \
    node "$HERE/firefox.test.mjs"
echo "screenshots: $SHOTS"
