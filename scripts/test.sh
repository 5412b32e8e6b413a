#!/usr/bin/env bash
# The one test command: starts the real services, prepares the Python interop peers and the headless
# browser of the console test, runs every test.
# CI runs exactly this (.ci/run). Prints how long each stage took; exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

declare -a stage_names=() stage_secs=()
stage() { # name command...
    local name=$1 start=$SECONDS rc=0
    shift
    printf '\n==> %s\n' "$name"
    "$@" || rc=$?
    stage_names+=("$name")
    stage_secs+=($((SECONDS - start)))
    if [ $rc -ne 0 ]; then
        report
        if [ -f "$root/target/test-output.txt" ]; then totals; fi
        printf 'test.sh: stage "%s" failed (exit %d)\n' "$name" "$rc" >&2
        exit $rc
    fi
}
report() {
    printf '\n==> stage times\n'
    local i
    for i in "${!stage_names[@]}"; do printf '  %-28s %5ss\n' "${stage_names[$i]}" "${stage_secs[$i]}"; done
}

python_env() {
    local venv="$root/target/venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/scripts/requirements.txt"
    # The design's redis-py-cluster pins an old redis-py: a virtualenv of its own.
    local cluster="$root/target/venv-cluster"
    [ -x "$cluster/bin/python" ] || python3 -m venv "$cluster"
    "$cluster/bin/python" -m pip install -q --disable-pip-version-check -r "$root/scripts/requirements-cluster.txt"
}

apache_codegen() { # Apache Thrift's Python code for the interop IDL, by Debian's thrift-compiler
    local out="$root/target/interop-py" log="$root/target/apt-thrift-compiler.log"
    if ! command -v thrift >/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "test.sh: thrift (Debian package thrift-compiler) is missing; run as root or install it with apt-get" >&2
            return 1
        fi
        echo "test.sh: installing thrift-compiler (apt-get)"
        mkdir -p "$root/target"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null || return 1
        apt-get install -y -q --no-install-recommends thrift-compiler >"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; echo "test.sh: apt-get install thrift-compiler failed (log: $log)" >&2; return 1; }
    fi
    rm -rf "$out" && mkdir -p "$out" || return 1
    thrift -r --gen py -out "$out" "$root/tests/idl/interop.thrift"
}

browser_env() { # headless Chromium (Debian's chromium, chromium-driver, libnss3-tools) and playwright-core for the console test
    local dir="$root/target/browser" log="$root/target/apt-chromium.log" missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    # certutil: the test trusts the test CA in Chromium's certificate store (the console is HTTPS).
    command -v certutil >/dev/null || missing+=(libnss3-tools)
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "test.sh: ${missing[*]} missing; run as root or install them with apt-get" >&2
            return 1
        fi
        echo "test.sh: installing ${missing[*]} (apt-get)"
        mkdir -p "$root/target"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null || return 1
        apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; echo "test.sh: apt-get install ${missing[*]} failed (log: $log)" >&2; return 1; }
    fi
    # playwright-core, pinned by tests/browser/package-lock.json, into target/browser/node_modules.
    mkdir -p "$dir" || return 1
    if [ -f "$dir/node_modules/playwright-core/package.json" ] \
        && cmp -s "$root/tests/browser/package-lock.json" "$dir/package-lock.json"; then
        return 0
    fi
    cp "$root/tests/browser/package.json" "$root/tests/browser/package-lock.json" "$dir/" || return 1
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

rm -f "$root/target/test-output.txt"
stage "services up (single and clustered)" scripts/services.sh up --cluster
eval "$(scripts/services.sh env --cluster)"
stage "python peers (venv)" python_env
export PROBE_TEST_PYTHON="$root/target/venv/bin/python"
export PROBE_TEST_PYTHON_CLUSTER="$root/target/venv-cluster/bin/python"
stage "python peers (thrift gen)" apache_codegen
export PROBE_TEST_APACHE_PY="$root/target/interop-py"
stage "browser (chromium, playwright)" browser_env
stage "cargo build (tests)" cargo test --workspace --no-run --quiet
# The published crates package and build from their .crate files alone, as crates.io would take them.
# Cargo unpacks the .crate files of its temporary registry under $CARGO_HOME/registry/src/-<hash>/
# and does not unpack a version again once it is there, and it takes a registry crate built once as
# built for good: an earlier run's sources or builds of probe's crates at the same version (from the
# same checkout path) would be used instead of this one's. So the unpacked sources go, and the
# packages are verified in a target directory of their own whose probe builds go too (the builds
# of their dependencies stay).
package_crates() {
    local cargo_home=${CARGO_HOME:-$HOME/.cargo} verify="$root/target/package-verify" crate
    for crate in probe-rpc probe-build probe-macros probe-runtime probe-console; do
        rm -rf "$cargo_home"/registry/src/-*/"$crate"-[0-9]*
    done
    rm -rf "$verify/package" "$verify"/debug/.fingerprint/probe* "$verify"/debug/deps/*probe* "$verify"/debug/build/probe*
    CARGO_TARGET_DIR=$verify cargo package --quiet --locked --allow-dirty \
        -p probe-rpc -p probe-build -p probe-macros -p probe-runtime -p probe-console
}
stage "cargo package (published crates)" package_crates
run_tests() { # every test binary, even after a failure; the output is kept for the totals
    # --nocapture: the corpus and interop tests print their summary lines (idl-corpus:, interop:).
    cargo test --workspace --no-fail-fast -- --nocapture 2>&1 | tee "$root/target/test-output.txt"
}
totals() { # one closing line over every cargo test binary
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
         END { printf "tests: %d passed, %d failed\n", p, f }' "$root/target/test-output.txt"
}
stage "cargo test" run_tests
stage "fuzz (${PROBE_FUZZ_SECONDS:-10} s per target)" scripts/fuzz.sh "${PROBE_FUZZ_SECONDS:-10}"
stage "idl-diff (${PROBE_IDL_DIFF_SECONDS:-30} s)" scripts/idl-diff.sh "${PROBE_IDL_DIFF_SECONDS:-30}"
report
totals
