#!/usr/bin/env bash
# scripts/bench.sh: the standard benchmark matrix against a throwaway chatd.
#
# Builds the release binary, starts `chatd serve` with an embedded PostgreSQL in a fresh
# temporary data dir on a free loopback port (per-user send limit off), runs every
# `chatd bench` scenario with --json, prints the results and writes them to
# docs/benchmarks.md (with the machine, date, commit and exact commands) and the fan-out
# sweep to docs/bench-fanout.svg. The server is stopped (SIGTERM) and the temporary
# directory removed on every exit.
#
#   scripts/bench.sh                 # the full matrix (the history seeding alone takes minutes)
#   BENCH_QUICK=1 scripts/bench.sh   # a small smoke run of the same steps
#
# BENCH_QUICK=1 writes to a temporary copy of the document instead of docs/ unless
# BENCH_OUT=DIR is set, so a smoke run never overwrites the real numbers.
set -euo pipefail

if [[ $# -gt 0 ]]; then
    echo "usage: [BENCH_QUICK=1] [BENCH_OUT=DIR] scripts/bench.sh" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
QUICK=${BENCH_QUICK:-0}
command -v curl >/dev/null || { echo "bench.sh: curl is needed to wait for /readyz" >&2; exit 1; }

cargo build --release
BIN=${CARGO_TARGET_DIR:-target}/release/chatd

WORK=$(mktemp -d /tmp/chatd-bench.XXXXXX)
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    rm -rf "$WORK"
}
trap stop_server EXIT

# A free loopback port: nothing answers a connection to it.
PORT=
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        PORT=$candidate
        break
    fi
done
[[ -n $PORT ]] || { echo "bench.sh: no free port found" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

# The load generator is one client address with thousands of accounts: every abuse limit off.
NO_LIMITS=(CHATD_LIMITS__MESSAGES_PER_SEC=0 CHATD_LIMITS__LOGIN_ATTEMPTS_PER_IP_PER_MIN=0 CHATD_LIMITS__REGISTRATIONS_PER_IP_PER_HOUR=0 CHATD_LIMITS__WS_CONNECTIONS_PER_USER=0 CHATD_LIMITS__WS_CONNECTIONS_PER_IP=0)
env "${NO_LIMITS[@]}" CHATD_LOG__LEVEL=warn \
    "$BIN" serve --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 240); do
    if curl -fsS "$URL/readyz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $i == 240 ]]; then
        echo "bench.sh: chatd did not become ready; its log:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "chatd ready at $URL (pid $SERVER_PID, data in $WORK/data)"

# The matrix. Open files: the hard limit bounds the sockets one process can hold.
HARD_NOFILE=$(ulimit -Hn)
if [[ $HARD_NOFILE == unlimited ]]; then HARD_NOFILE=1048576; fi
if [[ $QUICK == 1 ]]; then
    TIMING=(--warmup 1 --duration 3 --drain 5)
    FANOUT=(fanout --clients 50 --senders 5 --rate 20,40,60)
    ROOMS=(rooms --rooms 5 --clients 4 --rate 200)
    CONN_COUNT=200
    LOGIN=(login --concurrency 4 --during fanout --clients 50 --senders 5 --rate 40)
    HISTORY=(history --messages 2000 --requests 200)
    HISTORY_CONCURRENCY=8
else
    TIMING=(--warmup 2 --duration 10 --drain 5)
    FANOUT=(fanout --clients 1000 --senders 10 --rate 50,100,150,200,250)
    ROOMS=(rooms --rooms 100 --clients 10 --rate 10000)
    CONN_COUNT=50000
    LOGIN=(login --concurrency 32 --during fanout --clients 1000 --senders 10 --rate 150)
    HISTORY=(history --messages 1000000 --requests 2000)
    HISTORY_CONCURRENCY=16
fi
CONN_NOTE=
if ((CONN_COUNT > HARD_NOFILE - 2000)); then
    CONN_NOTE="capped from $CONN_COUNT to $((HARD_NOFILE - 2000)): this machine's hard open-file limit is $HARD_NOFILE per process (ulimit -Hn), less 2000 spare"
    CONN_COUNT=$((HARD_NOFILE - 2000))
    echo "connections: $CONN_NOTE"
fi
CONNECTIONS=(connections --count "$CONN_COUNT" --hold 10 --users 100 --server-pid "$SERVER_PID")

COMMANDS=()
run() {
    local name=$1
    shift
    local cleanup=(--cleanup)
    [[ -n ${KEEP:-} ]] && cleanup=()
    local cmd=("$BIN" bench --url "$URL" --json "${cleanup[@]}" "${TIMING[@]}" "$@")
    echo
    echo "== $name: chatd bench ${cmd[*]:2}"
    COMMANDS+=("chatd bench ${cmd[*]:2}")
    "${cmd[@]}" >"$WORK/$name.json"
    "$BIN" bench report --input "$WORK/$name.json"
}
run fanout "${FANOUT[@]}"
run rooms "${ROOMS[@]}"
run connections "${CONNECTIONS[@]}"
run login "${LOGIN[@]}"
# The seeded room is kept (KEEP=1: no --cleanup) for the run after it; the server is thrown
# away at the end anyway.
KEEP=1 run history "${HISTORY[@]}" --concurrency "$HISTORY_CONCURRENCY"
# The same room again, one request at a time: the latency of a page without queueing.
HISTORY_ROOM=$(sed -n 's/.*"room_id":"\([^"]*\)".*/\1/p' "$WORK/history.json" | head -n 1)
if [[ -n $HISTORY_ROOM ]]; then
    run history_c1 "${HISTORY[@]}" --room "$HISTORY_ROOM" --concurrency 1
fi

# The document, from the same JSON files the tables above were printed from.
OUT=${BENCH_OUT:-docs}
if [[ $QUICK == 1 && -z ${BENCH_OUT:-} ]]; then
    OUT=$(mktemp -d /tmp/chatd-bench-doc.XXXXXX)
fi
mkdir -p "$OUT"
"$BIN" bench plot --input "$WORK/fanout.json" --out "$OUT/bench-fanout.svg"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || echo unknown)
# The cluster comparison is scripts/bench-cluster.sh's section: carried over as it is.
CLUSTER_HEADING="## 1 node vs 2 nodes"
CLUSTER_SECTION=$(awk -v h="$CLUSTER_HEADING" '$0 == h { keep = 1 } keep && /^## / && $0 != h { keep = 0 } keep' \
    docs/benchmarks.md 2>/dev/null || true)
# So is scripts/bench-search.sh's.
SEARCH_HEADING="## search"
SEARCH_SECTION=$(awk -v h="$SEARCH_HEADING" '$0 == h { keep = 1 } keep && /^## / && $0 != h { keep = 0 } keep' \
    docs/benchmarks.md 2>/dev/null || true)
{
    echo "# chatd benchmarks"
    echo
    [[ $QUICK == 1 ]] && echo "**Smoke run (BENCH_QUICK=1): small sizes, not representative.**" && echo
    echo "Written by \`scripts/bench.sh\`: a release build of chatd with an embedded PostgreSQL"
    echo "(fresh data dir, every \`[limits]\` rate set to 0) and the load generator"
    echo "\`chatd bench\` on the same machine, sharing its cores. Latencies are in ms from the"
    echo "intended send time (open loop); warm-up excluded; \`errors\` are counted by code."
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- . ":(exclude)$OUT" 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- CPU: $cpu; cores: $(nproc); memory: $mem"
    echo "- kernel: $(uname -sr)"
    echo "- open files (hard limit per process): $HARD_NOFILE"
    [[ -n $CONN_NOTE ]] && echo "- connections: $CONN_NOTE"
    echo
    for name in fanout rooms connections login history history_c1; do
        [[ -f $WORK/$name.json ]] || continue
        echo "## $name"
        echo
        "$BIN" bench report --markdown --input "$WORK/$name.json"
        echo
    done
    echo "![fan-out latency over delivered rate](bench-fanout.svg)"
    echo
    echo "## Commands"
    echo
    echo "Against \`chatd serve --bind 127.0.0.1:PORT\` (URL below):"
    echo
    for c in "${COMMANDS[@]}"; do
        echo "    $c"
    done
    if [[ -n $CLUSTER_SECTION ]]; then
        echo
        echo "$CLUSTER_SECTION"
    fi
    if [[ -n $SEARCH_SECTION ]]; then
        echo
        echo "$SEARCH_SECTION"
    fi
} >"$OUT/benchmarks.md"
echo
echo "wrote $OUT/benchmarks.md and $OUT/bench-fanout.svg"
