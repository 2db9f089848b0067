#!/usr/bin/env bash
# scripts/bench-cluster.sh: fan-out and rooms on 1 chatd node, then on 2 nodes sharing one
# PostgreSQL (cluster.bus = "postgres": a message reaches the other node's subscribers through
# LISTEN/NOTIFY).
#
# Builds the release binary and starts ONE throwaway PostgreSQL cluster from the server
# binaries installed on the machine (as the `postgres` account when run as root, as chatd's
# embedded mode does), listening on a unix socket in a temporary directory and on a free
# loopback TCP port (password authentication; never 5432). Then:
#   1 node:  a fresh database, one `chatd serve`, `chatd bench fanout` and `chatd bench rooms`;
#   2 nodes: another fresh database, two `chatd serve` on their own ports, the same scenarios
#            with --url naming both: the k-th client connects to node k mod 2, so senders and
#            subscribers alternate and half of the deliveries cross nodes.
# Every node gets the same generated JWT secret, CHATD_CLUSTER__BUS=postgres and no per-user
# send limit. Prints a summary table and replaces the section "## 1 node vs 2 nodes" of
# docs/benchmarks.md (machine, date, commit, results, exact commands). The nodes are stopped
# (SIGTERM), PostgreSQL too (pg_ctl stop -m fast) and the temporary directory removed on
# every exit.
#
#   scripts/bench-cluster.sh                 # the measurement (minutes: 4 setups of 1,000 accounts)
#   BENCH_QUICK=1 scripts/bench-cluster.sh   # a small smoke run of the same steps
#
# BENCH_QUICK=1 writes to a temporary copy of the document instead of docs/ unless
# BENCH_OUT=DIR is set (DIR/benchmarks.md, copied from docs/ first if absent).
# BENCH_CLUSTER_BUS= (empty) leaves CHATD_CLUSTER__BUS unset, to try the script's plumbing
# with a chatd that has no [cluster] settings: deliveries then do not cross nodes and the
# 2-node runs report them missing.
set -euo pipefail

if [[ $# -gt 0 ]]; then
    echo "usage: [BENCH_QUICK=1] [BENCH_OUT=DIR] [BENCH_CLUSTER_BUS=postgres] scripts/bench-cluster.sh" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
REPO=$PWD
QUICK=${BENCH_QUICK:-0}
BUS=${BENCH_CLUSTER_BUS-postgres}
PG_USER=postgres
fail() {
    echo "bench-cluster.sh: $*" >&2
    exit 1
}
command -v curl >/dev/null || fail "curl is needed to wait for /readyz"

# The PostgreSQL server binaries, found as chatd finds them (src/db/embedded.rs): PATH, then
# `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
has_pg_binaries() {
    local b
    for b in initdb pg_ctl postgres createdb; do
        [[ -x $1/$b ]] || return 1
    done
}
candidates=()
if command -v initdb >/dev/null; then candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")"); fi
if command -v pg_config >/dev/null; then candidates+=("$(pg_config --bindir)"); fi
mapfile -t -O "${#candidates[@]}" candidates < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn)
PG_BIN=
for dir in "${candidates[@]}"; do
    if has_pg_binaries "$dir"; then
        PG_BIN=$dir
        break
    fi
done
[[ -n $PG_BIN ]] || fail "the PostgreSQL server binaries (initdb, pg_ctl, postgres, createdb) were not found: apt-get install postgresql"
# PostgreSQL refuses to run as root: then its files and processes belong to $PG_USER.
if [[ $(id -u) == 0 ]]; then
    id -u "$PG_USER" >/dev/null 2>&1 || fail "running as root needs the account '$PG_USER' to run PostgreSQL (useradd -r $PG_USER)"
    as_pg() { (cd / && runuser -u "$PG_USER" -- "$@"); }
else
    as_pg() { (cd / && "$@"); }
fi

cargo build --release
BIN=$(readlink -f "${CARGO_TARGET_DIR:-target}/release/chatd")

WORK=$(mktemp -d /tmp/chatd-cluster-bench.XXXXXX)
chmod 711 "$WORK" # the PostgreSQL account must reach $WORK/pg, and list nothing else
PG_DIR=$WORK/pg
PGDATA=$PG_DIR/data
PG_RUN=$PG_DIR/run
PG_STARTED=
NODE_PIDS=()

stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # chatd finishes in-flight requests (server.shutdown_grace_secs, 10 s), then exits.
    for pid in "${NODE_PIDS[@]}"; do
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
}
cleanup() {
    stop_nodes
    if [[ -n $PG_STARTED ]]; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t 60 >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports (nothing answers a connection to them), all different: PostgreSQL's,
# the single node's and the two nodes'.
PORTS=()
for _ in $(seq 1 200); do
    ((${#PORTS[@]} < 4)) || break
    candidate=$((20000 + RANDOM % 20000))
    [[ " ${PORTS[*]} " == *" $candidate "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        PORTS+=("$candidate")
    fi
done
((${#PORTS[@]} == 4)) || fail "no free ports found"
PG_PORT=${PORTS[0]}

# Secrets: generated, never printed.
PG_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')

# The PostgreSQL cluster: trust on its private unix socket only (as chatd's embedded mode),
# a password over TCP.
mkdir -m 700 "$PG_DIR"
(umask 077 && printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pwfile")
if [[ $(id -u) == 0 ]]; then chown -R "$PG_USER:" "$PG_DIR"; fi
as_pg mkdir -m 700 "$PG_RUN"
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$PG_DIR/pwfile" -E UTF8 --no-locale --no-sync >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; fail "initdb failed"; }
rm -f "$PG_DIR/pwfile"
cat >>"$PGDATA/postgresql.conf" <<EOF

# Written by scripts/bench-cluster.sh.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
max_connections = 200
EOF
PG_STARTED=1
as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$PG_DIR/postgres.log" -w -t 60 >/dev/null ||
    { cat "$PG_DIR/postgres.log" >&2; fail "PostgreSQL did not start"; }
PG_VERSION=$("$PG_BIN/postgres" --version | sed 's/^postgres (PostgreSQL)/PostgreSQL/')
echo "PostgreSQL ready on 127.0.0.1:$PG_PORT ($PG_VERSION, data in $PGDATA)"

: >"$WORK/chatd.toml"
NO_LIMITS=(CHATD_LIMITS__MESSAGES_PER_SEC=0 CHATD_LIMITS__LOGIN_ATTEMPTS_PER_IP_PER_MIN=0 CHATD_LIMITS__REGISTRATIONS_PER_IP_PER_HOUR=0 CHATD_LIMITS__WS_CONNECTIONS_PER_USER=0 CHATD_LIMITS__WS_CONNECTIONS_PER_IP=0)
NODE_ENV=(CHATD_AUTH__JWT_SECRET="$JWT_SECRET" "${NO_LIMITS[@]}" CHATD_LOG__LEVEL=warn)
SHOWN_ENV="CHATD_AUTH__JWT_SECRET=… ${NO_LIMITS[*]}"
if [[ -n $BUS ]]; then
    NODE_ENV+=(CHATD_CLUSTER__BUS="$BUS")
    SHOWN_ENV+=" CHATD_CLUSTER__BUS=$BUS"
fi

# Starts one node on database $2 at 127.0.0.1:$3 and waits until it is ready; a node that
# exits (an older chatd refuses CHATD_CLUSTER__BUS) fails the run with its log. Its settings
# come from the environment alone (an empty config file: not ./config.toml).
start_node() {
    local name=$1 db=$2 port=$3 pid
    mkdir -m 700 "$WORK/$name"
    env "${NODE_ENV[@]}" CHATD_DATABASE__URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/$db" \
        "$BIN" --config "$WORK/chatd.toml" serve --data-dir "$WORK/$name" --bind "127.0.0.1:$port" \
        >"$WORK/$name.log" 2>&1 &
    pid=$!
    NODE_PIDS+=("$pid")
    for i in $(seq 1 240); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            echo "chatd $name ready at http://127.0.0.1:$port (pid $pid, database $db)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null || [[ $i == 240 ]]; then
            echo "bench-cluster.sh: chatd $name did not become ready; its log:" >&2
            cat "$WORK/$name.log" >&2
            exit 1
        fi
        sleep 0.5
    done
}

# Moderate sizes: scripts/bench.sh's fan-out setup with the first three rates of its sweep,
# and its rooms setup at half its rate, so that a second node and its NOTIFY traffic still
# have headroom on a small machine.
if [[ $QUICK == 1 ]]; then
    TIMING=(--warmup 1 --duration 3 --drain 5)
    FANOUT=(fanout --clients 50 --senders 5 --rate "20,40")
    ROOMS=(rooms --rooms 5 --clients 4 --rate 200)
else
    TIMING=(--warmup 2 --duration 10 --drain 5)
    FANOUT=(fanout --clients 1000 --senders 10 --rate "50,100,150")
    ROOMS=(rooms --rooms 100 --clients 10 --rate 5000)
fi

# No --cleanup: each configuration has a database of its own, thrown away at the end (and
# deleting 1,000 accounts costs as many password hashes as registering them).
COMMANDS=()
run() {
    local name=$1 urls=$2
    shift 2
    local cmd=("$BIN" bench --url "$urls" --json "${TIMING[@]}" "$@")
    echo
    echo "== $name: chatd bench ${cmd[*]:2}"
    COMMANDS+=("chatd bench ${cmd[*]:2}")
    if ! "${cmd[@]}" >"$WORK/$name.json"; then
        local log
        for log in "$WORK"/node*.log; do
            echo "bench-cluster.sh: $name failed; the end of $(basename "$log"):" >&2
            tail -n 20 "$log" >&2
        done
        exit 1
    fi
    "$BIN" bench report --input "$WORK/$name.json"
}

# (a) one node.
as_pg "$PG_BIN/createdb" -h "$PG_RUN" -p "$PG_PORT" -U postgres chatd_1node
start_node node1 chatd_1node "${PORTS[1]}"
COMMANDS+=("$SHOWN_ENV CHATD_DATABASE__URL=postgres://postgres:…@127.0.0.1:$PG_PORT/chatd_1node chatd --config EMPTY.toml serve --data-dir DIR --bind 127.0.0.1:${PORTS[1]}")
URL1=http://127.0.0.1:${PORTS[1]}
run fanout-1 "$URL1" "${FANOUT[@]}"
run rooms-1 "$URL1" "${ROOMS[@]}"
stop_nodes

# (b) two nodes on one database: the first migrates it before the second starts.
as_pg "$PG_BIN/createdb" -h "$PG_RUN" -p "$PG_PORT" -U postgres chatd_2nodes
for n in 1 2; do
    port=${PORTS[$((n + 1))]}
    start_node "node2-$n" chatd_2nodes "$port"
    COMMANDS+=("$SHOWN_ENV CHATD_DATABASE__URL=postgres://postgres:…@127.0.0.1:$PG_PORT/chatd_2nodes chatd --config EMPTY.toml serve --data-dir DIR --bind 127.0.0.1:$port")
done
URL2=http://127.0.0.1:${PORTS[2]},http://127.0.0.1:${PORTS[3]}
run fanout-2 "$URL2" "${FANOUT[@]}"
run rooms-2 "$URL2" "${ROOMS[@]}"
stop_nodes

# The summary, from the compact JSON `chatd bench --json` prints (one result per line).
# field LINE KEY [OBJECT]: a number or string of the result, or of its object OBJECT.
field() {
    local json=$1
    if [[ -n ${3:-} ]]; then
        json=$(sed -n "s/.*\"$3\":{\([^}]*\)}.*/\1/p" <<<"$json")
    fi
    sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$json" | head -n 1
}
summary() {
    echo "| scenario | nodes | msg/s offered | acked msg/s | deliveries/s | deliver ms p50/p99 | missing/dup | errors |"
    echo "|---|---|---|---|---|---|---|---|"
    local name nodes line errors
    for name in fanout-1 fanout-2 rooms-1 rooms-2; do
        nodes=${name##*-}
        while IFS= read -r line; do
            [[ -n $line ]] || continue
            errors=$(sed -n 's/.*"errors":{\([^}]*\)}.*/\1/p' <<<"$line" | tr -d '"')
            printf '| %s | %s | %g | %.1f | %.0f | %.1f/%.1f | %s/%s | %s |\n' \
                "$(field "$line" scenario)" "$nodes" "$(field "$line" rate)" "$(field "$line" acks_per_sec)" \
                "$(field "$line" deliveries_per_sec)" "$(field "$line" p50 deliver_ms)" \
                "$(field "$line" p99 deliver_ms)" "$(field "$line" missing)" "$(field "$line" duplicates)" \
                "${errors:-0}"
        done <"$WORK/$name.json"
    done
}
echo
summary | tee "$WORK/summary.md"

# The document: docs/benchmarks.md (or a copy) with its section "## 1 node vs 2 nodes"
# replaced by this run's, at the end.
OUT=${BENCH_OUT:-docs}
if [[ $QUICK == 1 && -z ${BENCH_OUT:-} ]]; then
    OUT=$(mktemp -d /tmp/chatd-bench-doc.XXXXXX)
fi
mkdir -p "$OUT"
DOC=$OUT/benchmarks.md
if [[ ! -f $DOC && -f $REPO/docs/benchmarks.md ]]; then
    cp "$REPO/docs/benchmarks.md" "$DOC"
fi
touch "$DOC"
HEADING="## 1 node vs 2 nodes"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || echo unknown)
{
    # Everything but the old section (it runs to the next "## " heading), without trailing
    # blank lines.
    awk -v heading="$HEADING" '
        $0 == heading { skip = 1; next }
        skip && /^## / { skip = 0 }
        skip { next }
        /^$/ { blanks++; next }
        { for (; blanks > 0; blanks--) print ""; print }
    ' "$DOC"
    [[ -s $DOC ]] && echo
    echo "$HEADING"
    echo
    [[ $QUICK == 1 ]] && echo "**Smoke run (BENCH_QUICK=1): small sizes, not representative.**" && echo
    echo "Written by \`scripts/bench-cluster.sh\`: a release build of chatd, one PostgreSQL"
    echo "started by the script (default settings, fsync on) and reached over loopback TCP,"
    echo "a fresh database for each configuration, and the load generator \`chatd bench\`, all"
    echo "on the same machine, sharing its cores. Every node runs with"
    if [[ -n $BUS ]]; then
        echo "\`CHATD_CLUSTER__BUS=$BUS\` and every \`[limits]\` rate set to 0."
    else
        echo "every \`[limits]\` rate set to 0 and **without \`CHATD_CLUSTER__BUS\`**."
    fi
    echo "With 2 nodes the k-th client of a scenario connects to node k mod 2 (\`--url\` lists"
    echo "both), so senders and subscribers alternate and half of the deliveries cross nodes."
    echo "Latencies are in ms from the intended send time (open loop); warm-up excluded."
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet -- . ':(exclude)docs/benchmarks.md' 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "- CPU: $cpu; cores: $(nproc); memory: $mem"
    echo "- kernel: $(uname -sr); $PG_VERSION"
    echo
    cat "$WORK/summary.md"
    echo
    for name in fanout-1 rooms-1 fanout-2 rooms-2; do
        nodes=${name##*-}
        echo "${name%-*} on $nodes node$( ((nodes > 1)) && echo s), in full:"
        echo
        "$BIN" bench report --markdown --input "$WORK/$name.json"
        echo
    done
    echo "Commands (PostgreSQL on 127.0.0.1:$PG_PORT; secrets elided):"
    echo
    for c in "${COMMANDS[@]}"; do
        echo "    $c"
    done
} >"$WORK/benchmarks.md"
cat "$WORK/benchmarks.md" >"$DOC"
echo
echo "wrote the section \"$HEADING\" of $DOC"
