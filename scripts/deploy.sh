#!/usr/bin/env bash
# Example deployment of a new chatd to a host set up with scripts/install.sh and an external
# PostgreSQL: build, migrate the production database with the new binary, install it,
# restart the service and wait until it is ready. Adapt it to your own pipeline.
#
# The database URL carries a password, so it is read from CHATD_DATABASE__URL and only ever
# passed to chatd through the environment: never on a command line (visible in ps) and never
# printed. Exit status: 0 deployed, 1 a step failed (the message says which), 2 bad arguments
# or missing settings.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: CHATD_DATABASE__URL=postgres://... scripts/deploy.sh [options]

Steps, each checked before the next:
  1. build        cargo build --release --locked (skipped with --binary)
  2. migrate      chatd migrate with the new binary, against CHATD_DATABASE__URL
  3. install      the binary into BINDIR
  4. restart      systemctl restart SERVICE
  5. wait         poll READYZ_URL until it answers 200, for at most --timeout seconds

Options:
  --binary PATH    deploy this chatd binary instead of building one
  --bindir DIR     where the service's binary lives [default: /usr/local/bin]
  --config PATH    configuration passed to chatd migrate, if it exists
                   [default: /etc/chatd/config.toml]
  --service NAME   systemd service to restart [default: chatd]
  --readyz URL     readiness URL [default: http://127.0.0.1:8080/readyz]
  --timeout SECS   how long to wait for readiness [default: 60]
  --dry-run        print the steps; run none of them
  -h, --help       print this help

Environment:
  CHATD_DATABASE__URL   the production database (required; never pass it as an argument)
EOF
}

die_usage() {
    echo "deploy.sh: error: $* (see --help)" >&2
    exit 2
}
fail() {
    echo "deploy.sh: error: $*" >&2
    exit 1
}
step() { printf '==> %s\n' "$*"; }

binary=
bindir=/usr/local/bin
config=/etc/chatd/config.toml
service=chatd
readyz=http://127.0.0.1:8080/readyz
timeout=60
dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --binary | --bindir | --config | --service | --readyz | --timeout)
            [ $# -ge 2 ] || die_usage "$1 needs a value"
            case "$1" in
                --binary) binary=$2 ;;
                --bindir) bindir=$2 ;;
                --config) config=$2 ;;
                --service) service=$2 ;;
                --readyz) readyz=$2 ;;
                --timeout) timeout=$2 ;;
            esac
            shift 2
            ;;
        --dry-run) dry_run=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
case "$timeout" in
    '' | *[!0-9]*) die_usage "--timeout must be a whole number of seconds" ;;
esac
[ -n "${CHATD_DATABASE__URL:-}" ] ||
    die_usage "CHATD_DATABASE__URL is not set (the production database URL, from the environment)"
export CHATD_DATABASE__URL
if [ -n "$binary" ] && ! { [ -f "$binary" ] && [ -x "$binary" ]; }; then
    die_usage "--binary $binary is not an executable file"
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run() {
    if $dry_run; then
        printf '    would run: %s\n' "$*"
    else
        "$@"
    fi
}

# 1. build
if [ -z "$binary" ]; then
    step "build: cargo build --release --locked"
    binary=${CARGO_TARGET_DIR:-$repo/target}/release/chatd
    (cd "$repo" && run cargo build --release --locked) || fail "build failed"
else
    step "build: skipped, deploying $binary"
fi

# 2. migrate, with the new binary, before the old server is stopped: migrations must keep
#    the running version working (add, then remove in a later release).
step "migrate: chatd migrate (database from CHATD_DATABASE__URL)"
migrate=("$binary")
[ -f "$config" ] && migrate+=(--config "$config")
migrate+=(migrate)
status=0
run "${migrate[@]}" || status=$?
case "$status" in
    0) ;;
    2) die_usage "chatd migrate refused its arguments or configuration (exit status 2); nothing was deployed" ;;
    *) fail "chatd migrate failed (exit status $status); nothing was deployed" ;;
esac

# 3. install
step "install: $bindir/chatd"
run install -m 0755 "$binary" "$bindir/chatd.new" || fail "cannot copy the binary to $bindir"
# A rename is atomic: the service never sees a half-written binary.
run mv -f "$bindir/chatd.new" "$bindir/chatd" || fail "cannot replace $bindir/chatd"

# 4. restart
step "restart: systemctl restart $service"
run systemctl restart "$service" || fail "systemctl restart $service failed (see: journalctl -u $service)"

# 5. wait for readiness, bounded
step "wait: $readyz, at most ${timeout}s"
if ! $dry_run; then
    deadline=$((SECONDS + timeout))
    until curl -fsS -o /dev/null --max-time 2 "$readyz"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$service is not ready after ${timeout}s (see: systemctl status $service; journalctl -u $service)"
        fi
        sleep 1
    done
fi

if $dry_run; then
    step "dry run: nothing was changed"
else
    step "deployed: $service is ready"
fi
