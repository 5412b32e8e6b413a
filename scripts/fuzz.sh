#!/usr/bin/env bash
# Fuzzes every decoder for a short bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 20).
#
# The targets are the [[bin]]s of fuzz/ (a cargo-fuzz project outside the root workspace). Installs
# cargo-fuzz from crates.io if missing, writes seed inputs into fuzz/corpus/<target>, builds with
# AddressSanitizer into target/fuzz, and runs each target with libFuzzer. Prints one line per target
# with the executions run, then `fuzz: N targets, E total executions, C crashes`; exits non-zero on a
# crash, hang or over-limit allocation and prints the input libFuzzer saved in fuzz/artifacts/.
#
# Works on stable Rust: cargo-fuzz passes `-Zsanitizer=address`, which RUSTC_BOOTSTRAP=1 lets a
# stable rustc accept (its rust-std ships the ASan runtime). FUZZ_SANITIZER=none builds without a
# sanitizer and needs no unstable flag at all, but then -malloc_limit_mb is not enforced.
# Re-run one crash: cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=../target/fuzz cargo fuzz run <target> <artifact>
set -euo pipefail

secs=${1:-20}
case $secs in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac
sanitizer=${FUZZ_SANITIZER:-address}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="$root/target/fuzz"
logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$logs"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# fuzz/Cargo.lock is committed whole, so every run builds the same versions and leaves the tree
# clean: refuse to run on a lock file that is out of date instead of rewriting it.
if ! cargo metadata --locked --format-version 1 >/dev/null 2>"$logs/lock.log"; then
    sed -n '1,5p' "$logs/lock.log" >&2
    echo "fuzz: fuzz/Cargo.lock is out of date with fuzz/Cargo.toml or the workspace crates;" \
        "update it with \`(cd fuzz && cargo tree >/dev/null)\` and commit it" >&2
    exit 1
fi

# Seeds: valid messages written by probe's own writers (a plain build, no unstable flags).
# Built in the workspace's target directory, where scripts/test.sh has built the same dependencies
# for the tests already: 28 crates to compile instead of the whole tree (48 s here, not minutes).
CARGO_TARGET_DIR="$root/target" cargo run --locked --quiet --example seeds -- "$root/fuzz/corpus"

fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fuzz build --sanitizer "$sanitizer"

# -timeout: an input taking over 5 s is a hang. -malloc_limit_mb: one allocation over 64 MiB is a
# failure; the default limits allow at most a 16 MiB frame buffer, and inputs are at most 4 KiB.
libfuzzer_args=(-max_total_time="$secs" -timeout=5 -malloc_limit_mb=64 -print_final_stats=1)

targets=$(fuzz list)
count=0 total=0 crashes=0
for target in $targets; do
    count=$((count + 1))
    log="$logs/$target.log"
    artifacts="$root/fuzz/artifacts/$target"
    mkdir -p "$artifacts"
    before=$(ls "$artifacts")
    rc=0
    fuzz run --sanitizer "$sanitizer" "$target" -- "${libfuzzer_args[@]}" >"$log" 2>&1 || rc=$?
    # libFuzzer's last status line: `#1271867  DONE   cov: 331 ... exec/s: 115624 rss: 513Mb`.
    execs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)
    execs=${execs:-0}
    total=$((total + execs))
    if [ $rc -eq 0 ]; then
        printf 'fuzz: %-18s %10s executions in %ss (%s exec/s)\n' "$target" "$execs" "$secs" "${rate:-?}"
        continue
    fi
    crashes=$((crashes + 1))
    printf 'fuzz: %-18s FAILED (exit %d) after %s executions; log %s\n' "$target" "$rc" "$execs" "$log" >&2
    grep -A 12 -E 'panicked at|==ERROR|ALARM|out-of-memory|malloc\(' "$log" | head -n 30 >&2 || true
    new=$(comm -13 <(echo "$before") <(ls "$artifacts"))
    if [ -z "$new" ]; then
        echo "fuzz: no artifact written; see the log" >&2
    fi
    for artifact in $new; do
        echo "fuzz: crash input $artifacts/$artifact ($(wc -c <"$artifacts/$artifact") bytes, first 256 in hex):" >&2
        od -An -tx1 -v "$artifacts/$artifact" | head -n 16 >&2
    done
done

echo "fuzz: $count targets, $total total executions, $crashes crashes"
[ "$crashes" -eq 0 ]
