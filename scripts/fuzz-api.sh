#!/usr/bin/env bash
# Contract fuzzing: runs schemathesis against a live chatd, generating requests from
# GET /api/v1/openapi.json and checking that no request gets a 5xx, that every response has a
# status the description lists for that operation and a body that matches its schema.
#
#   scripts/fuzz-api.sh [--release]
#
# Starts its own `chatd serve` (embedded PostgreSQL in a temporary data dir, a free loopback
# port) and stops it at the end; installs schemathesis from PyPI into a venv of its own under
# target/ the first time. Registers an account over the API, makes it a server administrator
# (`chatd user set-admin`, so the admin API is exercised too) and fuzzes with its token.
#
# Environment:
#   FUZZ_API_EXAMPLES   examples per operation (default 50; CI uses a few)
#   FUZZ_API_TIMEOUT    seconds schemathesis may run in all (default 900)
#   FUZZ_API_SEED       hypothesis seed, to replay a run
#   FUZZ_API_CHECKS     schemathesis checks (default: no 5xx; status, content type, headers
#                       and body as described; 405 with Allow for undeclared methods; 401
#                       without the token)
#   FUZZ_API_VENV       where the venv goes (default target/fuzz-api-venv)
#   PYTHON              interpreter for the venv (default python3.11, else python3)
#
# Afterwards target/fuzz-api/ holds the server's log, a JUnit report and every request and
# response (HAR).
#
# Exit status: 0 when every check passed; 1 when schemathesis found a failure or the server
# could not be started; 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${FUZZ_API_EXAMPLES:-50}
TIME_LIMIT=${FUZZ_API_TIMEOUT:-900}
VENV=${FUZZ_API_VENV:-target/fuzz-api-venv}
case "$VENV" in /*) ;; *) VENV=$PWD/$VENV ;; esac
CHECKS=${FUZZ_API_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,missing_required_header,ignored_auth}
profile=debug

for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fuzz-api.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
case "$EXAMPLES$TIME_LIMIT" in
    *[!0-9]*) echo "fuzz-api.sh: FUZZ_API_EXAMPLES and FUZZ_API_TIMEOUT must be whole numbers" >&2; exit 2 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }

# --- schemathesis, in a venv of its own ---------------------------------------------------------
st="$VENV/bin/st"
if ! "$st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python=${PYTHON:-$(command -v python3.11 || command -v python3)}
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 lacks venv until python3-venv is installed.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$VENV"
        else
            echo "fuzz-api.sh: '$python -m venv' failed: install python3-venv" >&2
            exit 1
        fi
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- the server ------------------------------------------------------------------------------------
if [ "$profile" = release ]; then
    cargo build --release --bin chatd
else
    cargo build --bin chatd
fi
chatd="$PWD/target/$profile/chatd"

# What is left to read afterwards: the server's log and schemathesis' reports.
out=$PWD/target/fuzz-api
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/chatd-fuzz.XXXXXX")
# The embedded cluster runs as the `postgres` account when we are root: it must reach the dir.
chmod 755 "$work"
: >"$work/config.toml" # none of the repository's config.toml: defaults plus the variables below
port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export CHATD_SERVER__BIND="127.0.0.1:$port"
# Fast hashing (registrations and logins are fuzzed too), tokens that outlive the run, and no
# send rate limit (429 is documented, but it would stop most message examples from going deep).
export CHATD_AUTH__PBKDF2_ITERATIONS=1000
export CHATD_AUTH__ACCESS_TOKEN_TTL_SECS=86400
export CHATD_LIMITS__MESSAGES_PER_SEC=0
chatd_cmd=("$chatd" --config "$work/config.toml" --data-dir "$work/data")

server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        # A clean stop also stops the embedded cluster.
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    cp "$work/server.log" "$out/server.log" 2>/dev/null || true
    # Where the cluster went if the postgres account could not reach $work (see README).
    local cluster
    cluster=$(readlink "$work/data/postgres" 2>/dev/null || true)
    case "$cluster" in /var/lib/chatd/embedded/*) rm -rf "$cluster" ;; esac
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

log "starting chatd on $base (log: $work/server.log)"
"${chatd_cmd[@]}" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "fuzz-api.sh: chatd exited while starting:" >&2
        tail -n 30 "$work/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { echo "fuzz-api.sh: chatd not ready after 120 s" >&2; tail -n 30 "$work/server.log" >&2; exit 1; }

# --- an account to fuzz as, and things for it to find ---------------------------------------------
api() { # METHOD PATH [JSON]: the response body; fails on an HTTP error
    curl -fsS -X "$1" "$base$2" -H "authorization: Bearer ${token:-none}" \
        -H 'content-type: application/json' ${3:+-d "$3"}
}
json_field() { "$VENV/bin/python" -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
password="fuzz-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
token=
for user in fuzzpeer fuzzer; do
    api POST /api/v1/auth/register "{\"username\": \"$user\", \"password\": \"$password\"}" >/dev/null
done
"${chatd_cmd[@]}" user set-admin fuzzer true >/dev/null
token=$(api POST /api/v1/auth/login "{\"username\": \"fuzzer\", \"password\": \"$password\"}" | json_field access_token)
# Rooms with a member and messages: path ids, usernames and seqs are drawn from these most of
# the time, so that requests get past "no such room" to the handlers' own checks.
rooms=()
for visibility in public private; do
    room=$(api POST /api/v1/rooms "{\"name\": \"fuzz-$visibility\", \"visibility\": \"$visibility\"}" | json_field id)
    api POST "/api/v1/rooms/$room/members" '{"username": "fuzzpeer"}' >/dev/null
    for n in 1 2 3; do
        api POST "/api/v1/rooms/$room/messages" "{\"body\": \"message $n\"}" >/dev/null
    done
    rooms+=("\"$room\"")
done
cat >"$work/schemathesis.toml" <<EOF
[dictionaries.rooms]
values = [$(IFS=,; echo "${rooms[*]}")]
[dictionaries.users]
values = ["fuzzpeer", "fuzzer"]
[dictionaries.seqs]
values = [1, 2, 3]

[parameters]
"path.id" = { dictionary = "rooms", probability = 0.8 }
"path.username" = { dictionary = "users", probability = 0.8 }
"path.seq" = { dictionary = "seqs", probability = 0.8 }
"body.username" = { dictionary = "users", probability = 0.5 }
EOF

# --- the run --------------------------------------------------------------------------------------
seed=()
[ -n "${FUZZ_API_SEED:-}" ] && seed=(--seed "$FUZZ_API_SEED")
log "schemathesis: $EXAMPLES examples per operation, at most $TIME_LIMIT s"
set +e
# Logging out, or revoking a session (schemathesis finds the current one's id in GET
# /sessions), would end the session every later request uses.
# From the temporary dir: schemathesis keeps a cache in its working directory.
(cd "$work" && timeout --signal=INT --kill-after=30 "$TIME_LIMIT" \
    "$st" --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --exclude-path-regex '^/api/v1/(auth/logout|sessions/\{id\})$' \
    --max-examples "$EXAMPLES" \
    --no-color \
    --report junit,har --report-dir "$out" \
    "${seed[@]}")
status=$?
set -e
if [ "$status" = 124 ]; then
    echo "fuzz-api.sh: schemathesis did not finish within $TIME_LIMIT s" >&2
fi
if grep -q "panicked" "$work/server.log"; then
    echo "fuzz-api.sh: the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
[ "$status" = 0 ] && log "no failures" || log "failures found (exit $status)"
exit $(( status == 0 ? 0 : 1 ))
