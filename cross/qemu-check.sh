#!/usr/bin/env bash
# Runs the aarch64 build under qemu-user and checks it against the host build:
#   1. `store-edge demo --exit` (the embedded default day) prints the same report on both;
#   2. a short simulated capture replayed with `run --once` gives the same `report --json`.
# Prints the binary sizes and the demo's peak RSS under qemu (GNU time).
#
# Usage: cross/qemu-check.sh [HOST_BINARY]   (default: target/release/store-edge, else
#        target/debug/store-edge); needs target/cross/store-edge-aarch64 and its sysroot from
#        cross/build.sh aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$PWD/target/cross
arm=$work/store-edge-aarch64
host=${1:-}
if [ -z "$host" ]; then
    for b in target/release/store-edge target/debug/store-edge; do
        [ -x "$b" ] && { host=$b; break; }
    done
fi
if [ -z "$host" ] || [ ! -x "$host" ]; then
    echo "qemu-check: no host binary; build one first" >&2
    exit 2
fi
[ -x "$arm" ] || { echo "qemu-check: $arm missing; run cross/build.sh aarch64" >&2; exit 2; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

sysroot=$work/sysroot-arm64
libs=$sysroot/usr/lib/aarch64-linux-gnu:$sysroot/lib/aarch64-linux-gnu
# The target's libc from the cross toolchain, libpcap and what it needs from the sysroot.
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E "LD_LIBRARY_PATH=$libs")

echo "== binaries"
file "$arm" 2>/dev/null || true
printf '%-40s %10d bytes (stripped)\n' "$arm" "$(stat -c %s "$arm")"
printf '%-40s %10d bytes\n' "$host" "$(stat -c %s "$host")"
limit=$((20 * 1024 * 1024))
if [ "$(stat -c %s "$arm")" -gt $limit ]; then
    echo "qemu-check: the stripped aarch64 binary is over 20 MiB" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== demo: host"
"$host" demo --exit > "$tmp/demo-host.txt" 2> "$tmp/demo-host.err" || { cat "$tmp/demo-host.err" >&2; exit 1; }
echo "== demo: aarch64 under qemu"
/usr/bin/time -v -o "$tmp/time.txt" "${qemu[@]}" "$arm" demo --exit > "$tmp/demo-arm.txt" 2> "$tmp/demo-arm.err" || { cat "$tmp/demo-arm.err" >&2; exit 1; }
# The demo prints the temp dir it used; everything else must match.
normalize() { sed -E 's#/tmp/[^ ]+#<tmp>#g' "$1"; }
if ! diff <(normalize "$tmp/demo-host.txt") <(normalize "$tmp/demo-arm.txt"); then
    echo "qemu-check: the aarch64 demo report differs from the host's" >&2
    exit 1
fi
lines=$(wc -l < "$tmp/demo-arm.txt")
echo "demo reports equal ($lines lines)"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$tmp/time.txt" | sed 's/^\s*/qemu demo: /'

echo "== replay of a simulated capture"
"$host" simulate --out "$tmp/sim" --seed 21 --visitors 60 --zones 2 2> /dev/null
cp -r "$tmp/sim" "$tmp/sim-arm"
"$host" run --once --config "$tmp/sim/config.toml" 2> "$tmp/run-host.err" || { cat "$tmp/run-host.err" >&2; exit 1; }
"${qemu[@]}" "$arm" run --once --config "$tmp/sim-arm/config.toml" 2> "$tmp/run-arm.err" || { cat "$tmp/run-arm.err" >&2; exit 1; }
"$host" report --data-dir "$tmp/sim/data" --json > "$tmp/report-host.json"
"${qemu[@]}" "$arm" report --data-dir "$tmp/sim-arm/data" --json > "$tmp/report-arm.json"
if ! diff "$tmp/report-host.json" "$tmp/report-arm.json"; then
    echo "qemu-check: the aarch64 replay report differs from the host's" >&2
    exit 1
fi
visitors=$(grep -o '"visitors": *[0-9]*' "$tmp/report-arm.json" | head -1)
echo "replay reports equal ($visitors)"
echo "qemu check: ok"
