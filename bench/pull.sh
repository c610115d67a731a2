#!/usr/bin/env bash
# bench/pull.sh — Pull API throughput and the agent's memory while it serves a large outbox.
#
# Builds the release binary, simulates a store day, replays it with `run --once`, then grows the
# outbox to >= TARGET_RECORDS rows by copying its own rows with new record keys (sqlite3; the
# copies are real records.proto bodies, so the server parses and serves each one as usual).
# Starts `store-edge run` as a service (pull API on a free loopback port) and times
# `store-edge pull` (the reference client: JSON lines to a file, fsync and ack per batch) over
# the whole outbox, sampling the agent's RSS every 0.2 s.
#
# Targets (exit 1 on a miss):
#   records pulled           >= TARGET_RECORDS (1,000,000)
#   pull rate                >= 50,000 records/s (records / wall time of `store-edge pull`)
#   agent RSS                flat: the max over the second half of the pull exceeds the max over
#                            the first half by <= RSS_GROWTH_MB (8 MB), i.e. memory does not
#                            grow with the records served; and the overall max <= 64 MB.
# The agent runs with MALLOC_ARENA_MAX=2, as cross/store-edge.service sets it.
#
# Environment: TARGET_RECORDS, LIMIT (records per Pull request, default 100000), BENCH_DIR
# (work dir, kept), CPU (core for the agent, default 0; the client runs on the other one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_RECORDS=${TARGET_RECORDS:-1000000}
LIMIT=${LIMIT:-100000}
CPU=${CPU:-0}
MIN_RATE=${MIN_RATE:-50000}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-8}
MAX_RSS_MB=${MAX_RSS_MB:-64}
log() { printf '[bench] %s\n' "$*" >&2; }

# shellcheck source=../scripts/deps.sh
source "$ROOT/scripts/deps.sh"
store_edge_deps sqlite3

if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    rm -rf "$WORK"
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/store-edge-pull.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi

log "building"
(cd "$ROOT" && cargo build --release -p edge-agent --quiet)
BIN=$WORK/store-edge
cp "$ROOT/target/release/store-edge" "$BIN"

log "simulating and replaying a day"
"$BIN" simulate --out "$WORK/day" --seed 3 --visitors 2000 --zones 3 --history-days 0 \
    --phone-mix legacy >/dev/null 2>&1
"$BIN" run --config "$WORK/day/config.toml" --once --log warn >/dev/null
DB=$WORK/day/data/store-edge.db
base=$(sqlite3 "$DB" 'SELECT count(*) FROM outbox')
log "outbox holds $base records; copying them up to $TARGET_RECORDS"
rounds=$(((TARGET_RECORDS - base + base - 1) / base))
sqlite3 "$DB" "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < $rounds)
    INSERT INTO outbox (kind, record_key, revision, body, created_ms)
    SELECT o.kind, o.record_key || '#' || r.n, o.revision, o.body, o.created_ms
    FROM r, outbox o ORDER BY r.n, o.seq;"
RECORDS=$(sqlite3 "$DB" 'SELECT count(*) FROM outbox')
DB_MB=$(($(stat -c %s "$DB") / 1000000))
log "outbox: $RECORDS records, database $DB_MB MB"

cat >>"$WORK/day/config.toml" <<CONF

[sync]
listen = "127.0.0.1:0"
CONF
MALLOC_ARENA_MAX=2 taskset -c "$CPU" "$BIN" run --config "$WORK/day/config.toml" --log info 2>"$WORK/agent.log" &
AGENT=$!
trap 'kill $AGENT 2>/dev/null || true; [ -z "${BENCH_DIR:-}" ] && rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do
    grep -q 'sources drained' "$WORK/agent.log" && break
    sleep 0.1
done
ADDR=$(sed -n 's/.*pull API listening.*addr=\([0-9.:]*\).*/\1/p' "$WORK/agent.log" | head -1)
[ -n "$ADDR" ] || { cat "$WORK/agent.log" >&2; exit 1; }
log "agent pid $AGENT on $ADDR"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$AGENT/status"; }
: >"$WORK/rss.txt"
(while kill -0 $AGENT 2>/dev/null; do rss_kb >>"$WORK/rss.txt"; sleep 0.2; done) &
SAMPLER=$!
OTHER=$(((CPU + 1) % $(nproc)))
start=$(date +%s.%N)
taskset -c "$OTHER" "$BIN" pull --endpoint "http://$ADDR" --out "$WORK/pulled.jsonl" --limit "$LIMIT" --log warn
end=$(date +%s.%N)
sleep 0.5
kill $SAMPLER 2>/dev/null || true
PULLED=$(wc -l <"$WORK/pulled.jsonl")
WALL=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
RATE=$(awk -v n="$PULLED" -v s="$WALL" 'BEGIN { printf "%.0f", n / s }')
# Samples taken while the pull ran (the sampler started just before it).
read -r RSS_FIRST RSS_H1 RSS_H2 RSS_MAX < <(awk '{ v[NR] = $1 } END {
    h = int(NR / 2); for (i = 1; i <= NR; i++) { if (i <= h && v[i] > a) a = v[i]; if (i > h && v[i] > b) b = v[i]; if (v[i] > m) m = v[i] }
    print v[1], a, b, m }' "$WORK/rss.txt")
GROWTH_MB=$(awk -v a="$RSS_H1" -v b="$RSS_H2" 'BEGIN { g = (b - a) * 1024 / 1e6; printf "%.1f", g < 0 ? 0 : g }')
MAX_MB=$(awk -v m="$RSS_MAX" 'BEGIN { printf "%.1f", m * 1024 / 1e6 }')
SAMPLES=$(wc -l <"$WORK/rss.txt")

echo
echo "store-edge pull benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $(cd "$ROOT" && git rev-parse --short HEAD); outbox $RECORDS records ($DB_MB MB); Pull limit $LIMIT"
echo "pulled $PULLED records in ${WALL}s: $RATE records/s (JSON lines written, fsynced and acked per batch)"
echo "agent RSS during the pull: first $((RSS_FIRST / 1024)) MiB, max first half $((RSS_H1 / 1024)) MiB, max second half $((RSS_H2 / 1024)) MiB ($SAMPLES samples every 0.2 s)"
echo "RSS samples (MiB): $(awk '{ printf "%d ", $1 / 1024 }' "$WORK/rss.txt")"
fail=0
check() { if [ "$2" = 1 ]; then echo "  PASS  $1"; else echo "  FAIL  $1"; fail=1; fi; }
check "records pulled $PULLED >= $TARGET_RECORDS" "$(awk -v a="$PULLED" -v b="$TARGET_RECORDS" 'BEGIN { print (a >= b) }')"
check "rate $RATE >= $MIN_RATE records/s" "$(awk -v a="$RATE" -v b="$MIN_RATE" 'BEGIN { print (a >= b) }')"
check "RSS growth second half over first $GROWTH_MB MB <= $RSS_GROWTH_MB MB" "$(awk -v a="$GROWTH_MB" -v b="$RSS_GROWTH_MB" 'BEGIN { print (a <= b) }')"
check "RSS max $MAX_MB MB <= $MAX_RSS_MB MB" "$(awk -v a="$MAX_MB" -v b="$MAX_RSS_MB" 'BEGIN { print (a <= b) }')"
kill $AGENT
wait $AGENT 2>/dev/null || true
[ "$fail" -eq 0 ] && echo "RESULT: PASS" || { echo "RESULT: FAIL"; exit 1; }
