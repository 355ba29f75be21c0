# Shared by scripts/bench-peers.sh and scripts/bench-latency.sh (sourced, not run): installing
# the peers (dynalite from npm, Dynoxide with cargo install, jq from Debian when root), waiting
# for ports and reading a process's CPU time.
#
# The caller defines log() and CACHE (the install cache directory) before sourcing.

DYNALITE_VERSION=4.0.0
DYNOXIDE_VERSION=3.2.0
DYNALITE_CLI=$CACHE/dynalite/node_modules/dynalite/cli.js
DYNOXIDE_BIN=$CACHE/dynoxide/bin/dynoxide

is_root() { [ "$(id -u)" = 0 ]; }

apt_updated=0
apt_install() {
    if ! is_root; then
        log "not root: cannot apt-get install $*"
        return 1
    fi
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >&2 && apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

need_jq() {
    command -v jq >/dev/null || apt_install jq || { log "jq is required"; exit 1; }
}

install_dynalite() {
    [ -f "$DYNALITE_CLI" ] && return 0
    command -v npm >/dev/null || apt_install nodejs npm || return 1
    log "installing dynalite $DYNALITE_VERSION into $CACHE/dynalite"
    mkdir -p "$CACHE/dynalite"
    npm install --prefix "$CACHE/dynalite" --no-audit --no-fund "dynalite@$DYNALITE_VERSION" >&2
}

install_dynoxide() {
    [ -x "$DYNOXIDE_BIN" ] && return 0
    log "installing Dynoxide $DYNOXIDE_VERSION into $CACHE/dynoxide (cargo install, a few minutes)"
    # Only the HTTP server and the CLI: no MCP server or import tooling to compile.
    cargo install dynoxide-rs --version "$DYNOXIDE_VERSION" --locked --root "$CACHE/dynoxide" \
        --no-default-features --features native-sqlite,http-server,cli >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# utime + stime of a process, in clock ticks.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}
