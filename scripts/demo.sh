#!/usr/bin/env bash
# Runs `store-edge demo`: installs what is missing, builds, simulates a store day, replays it
# through the pipeline and prints the day report. Extra arguments go to `demo` (e.g. --exit).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
store_edge_deps
cargo build --release --locked -p edge-agent
exec target/release/store-edge demo "$@"
