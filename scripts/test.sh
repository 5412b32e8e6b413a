#!/usr/bin/env bash
# The one test command: starts the real services, prepares the Python interop peers, runs every test.
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
}

stage "services up" scripts/services.sh up
eval "$(scripts/services.sh env)"
stage "python peers (venv)" python_env
export PROBE_TEST_PYTHON="$root/target/venv/bin/python"
stage "cargo build (tests)" cargo test --workspace --no-run --quiet
stage "cargo test" cargo test --workspace
report
