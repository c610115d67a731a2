#!/usr/bin/env bash
# Runs every test of the workspace: installs what is missing, then `cargo test`. Extra
# arguments go to `cargo test` (e.g. `-p edge-core`, or `-- --nocapture` to see figures).
# Independent peers the tests drive are installed too:
#   tshark          a test cross-checks our 802.11 parser against Wireshark's dissectors
#   socat           pseudo-terminal pairs standing in for a POS printer's serial line
#   python-escpos   (PyPI, in a virtual environment under target/) writes ESC/POS receipts
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
store_edge_deps tshark socat python3-venv
venv=target/escpos-venv
if ! "$venv/bin/python" -c "import escpos" 2>/dev/null; then
    echo "store-edge: installing python-escpos into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "python-escpos==3.1"
fi
export STORE_EDGE_ESCPOS_PYTHON="$PWD/$venv/bin/python"
exec cargo test --workspace --locked "$@"
