#!/usr/bin/env bash
# Runs every test of the workspace: installs what is missing, then `cargo test`. Extra
# arguments go to `cargo test` (e.g. `-p edge-core`, or `-- --nocapture` to see figures).
# tshark is installed too: a test cross-checks our parser against it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
store_edge_deps tshark
exec cargo test --workspace --locked "$@"
