#!/usr/bin/env bash
# bench/realistic.sh — counts on a simulated day of phones that behave as measured on real
# captures (`simulate --phone-mix realistic`), and on 11 co-present phones in 7 fingerprint
# classes (`simulate --co-present`), scored by bench/realistic_eval.py against the truth.
#
# Targets (exit 1 when one is missed): visitors (tracked + estimated) within ±10 % of the
# truth; devices present per 10 minutes with an MAE within 15 % of the day's peak; no one-scan
# randomized MAC stored as a visit; the 11 co-present phones' bin within ±2 devices.
#
# Usage:   bench/realistic.sh [--keep]
# Environment: BENCH_DIR=DIR (work dir, kept), SEED=7, VISITORS=330, ZONES=3.
set -euo pipefail
cd "$(dirname "$0")/.."
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
status=0

rm -rf "$work/day"
"$bin" simulate --out "$work/day" --seed "${SEED:-7}" --visitors "${VISITORS:-330}" \
    --zones "${ZONES:-3}" --phone-mix realistic
"$bin" run --config "$work/day/config.toml" --once 2> "$work/day/run.log"
grep -E "frames in|randomized MACs" "$work/day/run.log" || true
date=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['date'])" "$work/day/truth.json")
"$bin" report --data-dir "$work/day/data" --date "$date" --json > "$work/day/report.json"
python3 bench/realistic_eval.py --truth "$work/day/truth.json" --report "$work/day/report.json" \
    --db "$work/day/data/store-edge.db" || status=1

rm -rf "$work/co"
"$bin" simulate --out "$work/co" --seed "${SEED:-7}" --co-present --zones 1
"$bin" run --config "$work/co/config.toml" --once 2> "$work/co/run.log"
"$bin" report --data-dir "$work/co/data" --json > "$work/co/report.json"
python3 bench/realistic_eval.py --co-present --truth "$work/co/truth.json" \
    --report "$work/co/report.json" --db "$work/co/data/store-edge.db" || status=1
exit $status
