#!/usr/bin/env bash
# bench/presence.sh — people present on real phones: the development set, days held out.
#
# Replays every day of the development set (real probe captures of a university lab with the
# lab's own people counts, ../shared/data/probe-request by default) through the release binary
# into one data directory, then scores the product's people-present estimate with
# bench/presence_eval.py: for each held-out day, at most 12 head counts sampled from each other
# day are fitted with `store-edge calibrate --dry-run --json`, and the fit predicts the held-out
# day. The lab's fixed PCs are listed under `[metrics] fixed_devices`, as its README tells an
# installer; nothing else is specific to the lab.
#
# Targets (exit 1 when one is missed): r >= 0.85 per 10 minutes; r >= 0.90 and MAE <= 2.0
# people per hour, over the held-out days.
#
# Usage:   bench/presence.sh [--keep]
# Environment: DEV=DIR (the development set), BENCH_DIR=DIR (work dir, kept), PER_DAY=12.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=${DEV:-$root/../shared/data/probe-request}
[[ -d $dev ]] || { echo "bench/presence.sh: no development set at $dev (set DEV)" >&2; exit 2; }
dev=$(cd "$dev" && pwd)
keep=0
[[ ${1:-} == --keep ]] && keep=1
if [[ -n ${BENCH_DIR:-} ]]; then
    work=$BENCH_DIR
    mkdir -p "$work"
    keep=1
else
    work=$(mktemp -d)
fi
cleanup() { if [[ $keep == 0 ]]; then rm -rf "$work"; else echo "work dir: $work"; fi; }
trap cleanup EXIT

source scripts/deps.sh
store_edge_deps libpcap-dev
cargo build --release --locked -q -p edge-agent
cp target/release/store-edge "$work/store-edge"
bin=$work/store-edge
rm -rf "$work/data"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/key.hex"
cat > "$work/secrets.toml" <<EOF
device_key_secret = "$(cat "$work/key.hex")"
EOF
chmod 600 "$work/secrets.toml"
fixed='"dc:fb:48:68:be:e4", "dc:fb:48:8c:71:fc", "dc:fb:48:2a:52:e0", "dc:fb:48:f5:c6:c2",
  "dc:fb:48:e3:ab:78", "dc:fb:48:00:51:90", "dc:fb:48:75:d8:42", "dc:fb:48:de:86:8d",
  "dc:fb:48:dd:c6:0b", "dc:fb:48:55:d5:78", "dc:fb:48:c2:1d:64", "40:ec:99:f9:34:a6",
  "40:ec:99:8e:3f:63", "40:ec:99:1f:3e:75"'
config() {
    cat > "$work/config.toml" <<EOF
[store]
store_id = "lab-sc6-61"
gateway_id = "bench"
timezone = "Europe/Prague"

[privacy]
secrets_file = "secrets.toml"

[storage]
data_dir = "data"

[metrics]
fixed_devices = [$fixed]

[sync]
enabled = false

[[sources.wifi]]
name = "lab"
zone = "lab"
pcap = "$1"
EOF
}
start=$(date +%s)
for pcap in "$dev"/*.pcap; do
    config "$pcap"
    "$bin" run --config "$work/config.toml" --once 2> "$work/run-$(basename "$pcap" .pcap).log" \
        || { cat "$work/run-$(basename "$pcap" .pcap).log" >&2; exit 1; }
done
echo "replayed $(ls "$dev"/*.pcap | wc -l) days in $(( $(date +%s) - start )) s"
python3 bench/presence_eval.py --data "$work/data" --config "$work/config.toml" --dev "$dev" \
    --binary "$bin" --per-day "${PER_DAY:-12}"
