#!/usr/bin/env bash
# Differential IDL test: random IDL programs judged by Apache Thrift 0.17 (Debian's thrift-compiler,
# `thrift -r --gen py`) and by probe-build; every disagreement is shrunk to a reproducer under
# target/idl-diff/. Usage: scripts/idl-diff.sh [SECONDS] (default 30). PROBE_IDL_DIFF_SEED picks the
# seed (default 1: the same programs every run). Ends with one line
# `idl-diff: N programs, D disagree (...)` and exits non-zero on any disagreement.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${1:-30}
if ! command -v thrift >/dev/null; then
    echo "idl-diff.sh: thrift (Debian package thrift-compiler 0.17) is missing; install it with apt-get" >&2
    exit 1
fi
cargo build --release --quiet -p idl-diff
exec "${CARGO_TARGET_DIR:-$root/target}/release/idl-diff" --seconds "$seconds" --seed "${PROBE_IDL_DIFF_SEED:-1}" --out "$root/target/idl-diff"
