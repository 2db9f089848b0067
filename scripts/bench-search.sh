#!/usr/bin/env bash
# scripts/bench-search.sh: full-text search (`GET /api/v1/search`) on a million messages.
#
# Builds chatd (release profile; BENCH_PROFILE=fastrel for the quicker non-LTO build), starts
# `chatd serve` with its embedded PostgreSQL in a fresh temporary data dir on a free loopback
# port (the same throwaway setup as scripts/bench.sh), and loads the data set straight into its
# database with SQL (psql over the embedded cluster's private unix socket):
#   - a vocabulary of 5,000 made-up words drawn with a Zipf-like law (word of rank r with
#     probability ~ 1/r), so a few terms are in half the messages and most are rare;
#   - 1,000 rooms (every 10th private), BENCH_MESSAGES messages (default 1,000,000) of 6-14
#     words spread over them; the GIN index is dropped for the load and built afterwards (both
#     timed), then VACUUM ANALYZE;
#   - the searcher is a member of 50 rooms (25 private, 25 public), so it may read 925 rooms:
#     900 public and its 25 private ones, and none of the other 75 private rooms.
# Then it times BENCH_QUERIES searches per class (default 100) over real HTTP on loopback, one
# at a time on a kept-alive connection, measured by the client (Python's http.client): rare,
# medium and common single words, two-word phrases, and a medium word within one room.
# Prints a markdown table (p50/p95/p99/max per class); docs/benchmarks.md has the numbers.
# The server is stopped (SIGTERM) and the temporary directory removed on every exit.
#
#   scripts/bench-search.sh                               # 1M messages, 100 queries per class
#   BENCH_MESSAGES=100000 BENCH_QUERIES=50 scripts/bench-search.sh   # a quick smoke run
set -euo pipefail

if [[ $# -gt 0 ]]; then
    echo "usage: [BENCH_MESSAGES=N] [BENCH_QUERIES=N] [BENCH_PROFILE=release|fastrel] [BENCH_BIN=path/to/chatd] scripts/bench-search.sh" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
MESSAGES=${BENCH_MESSAGES:-1000000}
QUERIES=${BENCH_QUERIES:-100}
PROFILE=${BENCH_PROFILE:-release}
fail() {
    echo "bench-search.sh: $*" >&2
    exit 1
}
for tool in curl psql python3; do
    command -v $tool >/dev/null || fail "$tool is needed"
done

if [[ -n ${BENCH_BIN:-} ]]; then
    BIN=$(readlink -f "$BENCH_BIN") # a chatd built already (its profile is then whatever it was)
    PROFILE="given ($BENCH_BIN)"
else
    cargo build --profile "$PROFILE"
    BIN=$(readlink -f "${CARGO_TARGET_DIR:-target}/$PROFILE/chatd")
fi

# Short: the embedded cluster's socket lives under it (unix socket paths are short).
WORK=$(mktemp -d /tmp/cbs.XXXXXX)
chmod 711 "$WORK" # the PostgreSQL account (when run as root) must reach its data dir
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" || true
    fi
    rm -rf "$WORK"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        PORT=$candidate
        break
    fi
done
[[ -n $PORT ]] || fail "no free port found"
URL=http://127.0.0.1:$PORT

env CHATD_LIMITS__REGISTRATIONS_PER_IP_PER_HOUR=0 CHATD_LOG__LEVEL=warn \
    "$BIN" serve --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 240); do
    curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $i == 240 ]]; then
        cat "$WORK/server.log" >&2
        fail "chatd did not become ready"
    fi
    sleep 0.5
done

# The embedded cluster's socket (src/db/embedded.rs: DATA_DIR/run).
# When the data dir is out of the PostgreSQL account's reach, DATA_DIR/postgres is a symlink to
# the cluster kept elsewhere, with its run/ beside it.
CLUSTER_ROOT=$(dirname "$(readlink -f "$WORK/data/postgres")")
SOCKET=$(find "$WORK/data" "$CLUSTER_ROOT/run" -maxdepth 2 -name .s.PGSQL.5432 2>/dev/null | head -n 1)
[[ -n $SOCKET ]] || fail "the embedded PostgreSQL socket was not found"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$(dirname "$SOCKET")" -U postgres -d chatd)

PASSWORD=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
register() {
    curl -fsS -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$PASSWORD\"}" "$URL/api/v1/auth/register" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
TOKEN=$(register searcher)
register author >/dev/null

echo "loading $MESSAGES messages into 1000 rooms..."
START=$(date +%s.%N)
"${PSQL[@]}" <<SQL
DROP INDEX messages_search_idx;
-- 5,000 pronounceable made-up words: each rank's digits in base 20 spell syllables.
CREATE TABLE bench_vocab AS
SELECT i, (SELECT string_agg((ARRAY['ka','lo','mi','nu','pe','ra','si','to','vu','ze',
                                    'ba','de','fi','go','hu','ja','ko','le','mo','ny'])[(i / (20 ^ k))::int % 20 + 1], '' ORDER BY k DESC)
           FROM generate_series(0, 2) k) || 'x' AS w
FROM generate_series(1, 5000) i;
INSERT INTO rooms (id, name, name_key, visibility, last_seq)
SELECT gen_random_uuid(), 'bench-room-' || n, 'bench-room-' || n,
       CASE WHEN n % 10 = 0 THEN 'private' ELSE 'public' END, 0
FROM generate_series(1, 1000) n;
CREATE TABLE bench_rooms AS
SELECT row_number() OVER (ORDER BY name) - 1 AS k, id, visibility FROM rooms WHERE name LIKE 'bench-room-%';
-- The searcher: 25 private and 25 public rooms.
INSERT INTO room_members (room_id, user_id, role)
SELECT r.id, u.id, 'member' FROM users u,
  ((SELECT id FROM bench_rooms WHERE visibility = 'private' ORDER BY k LIMIT 25)
   UNION ALL (SELECT id FROM bench_rooms WHERE visibility = 'public' ORDER BY k LIMIT 25)) r
WHERE u.username = 'searcher';
-- Messages: room g mod 1000, seq g / 1000 + 1, one second apart, 6-14 Zipf-drawn words.
INSERT INTO messages (id, room_id, seq, author_id, body, created_at)
SELECT gen_random_uuid(), r.id, g / 1000 + 1, a.id,
       (SELECT string_agg(v.words[least(5000, floor(exp(random() * ln(5001)))::int)], ' ' ORDER BY k)
        FROM generate_series(1, 6 + (g::bigint * 7919) % 9) k),
       now() - make_interval(secs => $MESSAGES - g)
FROM generate_series(0, $MESSAGES - 1) g
JOIN bench_rooms r ON r.k = g % 1000
CROSS JOIN (SELECT id FROM users WHERE username = 'author') a
CROSS JOIN (SELECT array_agg(w ORDER BY i) AS words FROM bench_vocab) v;
UPDATE rooms r SET last_seq = s.last FROM (SELECT room_id, max(seq) AS last FROM messages GROUP BY room_id) s
WHERE r.id = s.room_id;
SQL
LOADED=$(date +%s.%N)
"${PSQL[@]}" -c "CREATE INDEX messages_search_idx ON messages USING gin (search) WHERE deleted_at IS NULL"
INDEXED=$(date +%s.%N)
"${PSQL[@]}" -c "VACUUM ANALYZE messages" -c "VACUUM ANALYZE rooms" -c "VACUUM ANALYZE room_members"
VACUUMED=$(date +%s.%N)
SIZE=$("${PSQL[@]}" -At -c "SELECT pg_size_pretty(pg_total_relation_size('messages')) || ' (GIN index ' || pg_size_pretty(pg_relation_size('messages_search_idx')) || ')'")
printf 'load %.0f s, GIN index %.0f s, vacuum analyze %.0f s; messages table %s\n' \
    "$(echo "$LOADED - $START" | bc)" "$(echo "$INDEXED - $LOADED" | bc)" "$(echo "$VACUUMED - $INDEXED" | bc)" "$SIZE"

# The query words, by rank: how many messages hold each is printed with the results.
"${PSQL[@]}" -At -F' ' -c "SELECT i, w FROM bench_vocab ORDER BY i" >"$WORK/vocab.txt"
SAMPLE_ROOM=$("${PSQL[@]}" -At -c "SELECT id FROM bench_rooms WHERE visibility = 'public' ORDER BY k LIMIT 1")
# The plans, for the record (EXPLAIN ANALYZE of the statement chatd runs is in the docs).
"${PSQL[@]}" -At -c "SELECT count(*) FROM messages WHERE search @@ to_tsquery('simple', '$(sed -n 1p "$WORK/vocab.txt" | cut -d' ' -f2)') AND deleted_at IS NULL" |
    sed 's/^/messages holding the most common word: /'

echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); build profile: $PROFILE"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $("${PSQL[@]}" -At -c 'SHOW server_version' | sed 's/^/PostgreSQL /'), embedded (chatd's defaults)"
python3 - "$URL" "$TOKEN" "$WORK/vocab.txt" "$QUERIES" "$SAMPLE_ROOM" <<'PY'
import http.client, json, random, sys, time, urllib.parse
url, token, vocab_file, per_class, room = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
words = [line.split()[1] for line in open(vocab_file)]
rng = random.Random(42)
host = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
def word(lo, hi):
    return words[rng.randint(lo, hi) - 1]
classes = [
    ("rare (rank 2000-5000)", lambda: {"q": word(2000, 5000)}),
    ("medium (rank 50-200)", lambda: {"q": word(50, 200)}),
    ("common (rank 1-10)", lambda: {"q": word(1, 10)}),
    ("phrase (two of rank 1-30)", lambda: {"q": '"%s %s"' % (word(1, 30), word(1, 30))}),
    ("two words, all (rank 10-100)", lambda: {"q": "%s %s" % (word(10, 100), word(10, 100))}),
    ("medium, one room (room_id)", lambda: {"q": word(50, 200), "room_id": room}),
]
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1)]
print("| class | queries | hits/page (mean) | ms p50 | p95 | p99 | max | errors |")
print("|---|---|---|---|---|---|---|---|")
for name, make in classes:
    # Warm-up: a few queries of the class, not recorded.
    for _ in range(5):
        conn.request("GET", "/api/v1/search?" + urllib.parse.urlencode(make()), headers={"authorization": "Bearer " + token})
        conn.getresponse().read()
    lat, hits, errors = [], [], 0
    for _ in range(per_class):
        path = "/api/v1/search?" + urllib.parse.urlencode(make())
        t = time.perf_counter()
        conn.request("GET", path, headers={"authorization": "Bearer " + token})
        resp = conn.getresponse()
        body = resp.read()
        lat.append((time.perf_counter() - t) * 1000)
        if resp.status != 200:
            errors += 1
        else:
            hits.append(len(json.loads(body)["items"]))
    print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %d |" % (
        name, per_class, sum(hits) / max(1, len(hits)), pct(lat, 50), pct(lat, 95), pct(lat, 99), max(lat), errors))
    sys.stdout.flush()
PY
