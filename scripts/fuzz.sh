#!/usr/bin/env bash
# Fuzzes chatd's parsers with cargo-fuzz (libFuzzer), each target for a bounded time.
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECS (default 60) seconds each
#   FUZZ_SECS=300 scripts/fuzz.sh ws_frame
#
# Targets (fuzz/fuzz_targets/): `ws_frame` — a client's WebSocket text frame through
# `chatd::ws::protocol::parse`; `config` — a config file's text through
# `chatd::config::Config::from_toml_str` and `Config::validate`. No network, no database.
#
# Exits non-zero when a target crashes (panic, failed invariant, sanitizer report, timeout or
# out-of-memory) and prints the input that did it (fuzz/artifacts/<target>/…). To replay one:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact> (with the same flags as below), or turn
# it into a unit test next to the parser (the seed inputs found so far are there).
#
# Stable Rust only. cargo-fuzz is made for nightly, but on stable 1.95 (measured):
# - the coverage instrumentation (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`)
#   and `--cfg fuzzing` are stable flags; libfuzzer-sys builds libFuzzer itself with g++;
# - AddressSanitizer is `-Zsanitizer=address`, a nightly flag: RUSTC_BOOTSTRAP=1 lets stable
#   rustc accept it, and the stable toolchain ships its runtime (librustc-stable_rt.asan.a), so
#   no -Zbuild-std is needed. FUZZ_SANITIZER=none skips it.
# - cargo-fuzz forces one codegen unit in release builds: for chatd's whole dependency tree that
#   is several times slower to build on two cores, so we ask for 16.
# Cost, measured on the 2-core machine shared with other builds: installing cargo-fuzz 2 min;
# the first build of both targets 35 min wall (18 min CPU: chatd's whole dependency tree,
# instrumented); after any change under src/ chatd itself is rebuilt (10-20 min). Runs:
# ws_frame ~4,700 execs/s, config ~270 execs/s (figment, then validate's URL and log-filter
# parsers). Far too slow for CI, which does not run this.
# Growth of the corpus stays in fuzz/corpus-grown/ (git-ignored); fuzz/corpus/ holds the
# committed seeds, read but never written.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${FUZZ_SECS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ws_frame config)

export RUSTC_BOOTSTRAP=1
# -a: debug assertions and overflow checks, so an arithmetic overflow is a crash, not a wrap.
build_flags=(-a --codegen-units 16 --sanitizer "$sanitizer")

if ! command -v cargo-fuzz >/dev/null; then
    echo "==> installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

echo "==> building ${targets[*]}" >&2
for t in "${targets[@]}"; do
    cargo fuzz build "${build_flags[@]}" "$t"
done

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus-grown/$t" "artifacts/$t"
    marker=$(mktemp)
    echo "==> fuzzing $t for ${secs}s" >&2
    # -timeout: one input taking seconds is a denial of service for a parser that a client or
    # an operator feeds; -rss_limit_mb: likewise for memory. libFuzzer's default -max_len
    # (4 KiB, or the largest seed) is enough to reach every branch of these parsers.
    if ! cargo fuzz run "${build_flags[@]}" "$t" "corpus-grown/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
        -dict="dicts/$t.dict" -print_final_stats=1; then
        failed+=("$t")
        found=$(find "artifacts/$t" -type f -newer "$marker" 2>/dev/null)
        echo "==> $t FAILED; input(s): ${found:-none written}" | sed "s|artifacts/|$PWD/artifacts/|g" >&2
    fi
    rm -f "$marker"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "==> crashed: ${failed[*]}" >&2
    exit 1
fi
echo "==> no crash in ${targets[*]} (${secs}s each)" >&2
