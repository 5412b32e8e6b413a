#!/usr/bin/env bash
# A fleet at scale on the clustered test services: scripts/fleet.sh [NODES] [WATCHERS] [CHANGES]
# (default 1000 200 20). Starts the services with `scripts/services.sh up --cluster`, registers
# NODES provider nodes in the ZooKeeper ensemble, opens WATCHERS clients (each on a ZooKeeper
# connection of its own, each with a routing table of every node), makes CHANGES operator weight
# changes, and prints a table: registration time, each change's time to the last client (p50, p99,
# max), the ensemble's watch count, client memory per watcher and per 1,000 nodes.
# Traffic stays on 127.0.0.1; the run is bounded by its counts and stops by itself.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/services.sh up --cluster
eval "$(scripts/services.sh env --cluster)"
# Release build: a debug build measures the compiler, not the fleet.
exec cargo run --quiet --release -p probe-tests --bin fleet -- "$@"
