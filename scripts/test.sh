#!/usr/bin/env bash
# Runs every test of the workspace: installs what is missing, then `cargo test`. Extra
# arguments go to `cargo test` (e.g. `-p edge-core`, or `-- --nocapture` to see figures).
# Independent peers the tests drive are installed too:
#   tshark          a test cross-checks our 802.11 parser against Wireshark's dissectors
#   socat           pseudo-terminal pairs standing in for a POS printer's serial line
#   python-escpos   (PyPI, in a virtual environment under target/) writes ESC/POS receipts
#   pymodbus        (PyPI, same environment) a Modbus RTU slave on a pseudo terminal
#   mosquitto       an MQTT broker the tests start on a free loopback port
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
store_edge_deps tshark socat python3-venv mosquitto
venv=target/escpos-venv
if ! "$venv/bin/python" -c "import escpos, pymodbus, serial" 2>/dev/null; then
    echo "store-edge: installing python-escpos and pymodbus into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "python-escpos==3.1" "pymodbus[serial]==3.8.6"
fi
export STORE_EDGE_ESCPOS_PYTHON="$PWD/$venv/bin/python"
export STORE_EDGE_PYTHON="$PWD/$venv/bin/python"
# The peers above are installed: a test that cannot find them fails instead of skipping.
export STORE_EDGE_REQUIRE_PEERS=1
exec cargo test --workspace --locked "$@"
