#!/usr/bin/env bash
# bench/replay.sh — replay throughput and memory of `store-edge run --once`, against tshark.
#
# What it measures (all on ONE core, `taskset -c $CPU`, same capture file, same script run):
#   * store-edge: parse + sessionize + store of a synthetic radiotap pcap made by
#     `store-edge simulate` (1 zone, 1 open hour), fresh SQLite data dir before every run;
#     wall time and peak RSS from `/usr/bin/time -v`.
#     records/s = pcap records read (the run's `records read`) / wall time of the whole process.
#   * tshark, the exact command of the issue, output discarded after `wc -l` (on another core):
#       tshark -r FILE -Y wlan.fc.type_subtype==4 -T fields -e wlan.sa -e radiotap.dbm_antsignal
#
# Targets (the script exits 1 and prints a FAIL line for every target missed):
#   records in the capture     >= 2,000,000
#   peak devices tracked       >= 100,000    (the run's `peak N devices tracked`: open visits)
#   store-edge records/s       >= 1,000,000  (best of the RUNS store-edge runs; median shown too)
#   tshark wall / store-edge   >= 10
#   store-edge peak RSS        <= 64 MB      (10^6 bytes, as the issue says; max over the runs;
#                                             GNU time's "kbytes" are KiB)
#   multi-day capture: the same records/s and RSS targets on 17 simulated days of an ordinary
#   store (`simulate --days 17 --visitors 765 --zones 1 --phone-mix legacy`: ~2.0 M records, ~38 k visits and
#   ~6.5 k hourly records; store-edge only, best of RUNS)
#
# Usage:   bench/replay.sh [--keep]
#   --keep                 keep the work dir (capture, logs, SQLite data) and print its path
# Environment:
#   BENCH_DIR=DIR          work dir instead of a fresh temp dir (never deleted); a capture already
#                          there that was made with the same binary and parameters is reused
#   VISITORS=100000        `simulate --visitors`   (visitors stay 6-60 min and probe often:
#   PASSERSBY=80000        `simulate --passersby`   ~111 records each; passers-by ~5 records each)
#                          The defaults give ~11.6 M records (~1.5 GB) and ~108 k devices tracked
#                          at the peak; tshark needs ~6 min for that, which dominates the bench.
#   SEED=1                 `simulate --seed`
#   MD_DAYS=17 MD_VISITORS=765   the multi-day case (`--days`, `--visitors` per day);
#                          MD_DAYS=0 skips it
#   RUNS=3                 store-edge runs (tshark runs once)
#   CPU=0                  core the measured processes are pinned to
#   MIN_RECORDS=2000000 MIN_PEAK=100000 MIN_RATE=1000000 MIN_RATIO=10 MAX_RSS_MB=64
# Needs: cargo, taskset, capinfos (optional cross-check); installs libpcap-dev, tshark and GNU
# time with apt-get (scripts/deps.sh) when missing.
# Disk: ~1.6 GB in the work dir, removed at exit unless kept.
# The binary is copied into the work dir right after the build, so concurrent builds of the
# workspace cannot change what is measured half-way.

set -euo pipefail

KEEP=0
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        -h | --help)
            sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

VISITORS=${VISITORS:-100000}
PASSERSBY=${PASSERSBY:-80000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
CPU=${CPU:-0}
MIN_RECORDS=${MIN_RECORDS:-2000000}
MIN_PEAK=${MIN_PEAK:-100000}
MIN_RATE=${MIN_RATE:-1000000}
MIN_RATIO=${MIN_RATIO:-10}
MAX_RSS_MB=${MAX_RSS_MB:-64}
MD_DAYS=${MD_DAYS:-17}
MD_VISITORS=${MD_VISITORS:-765}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '[bench] %s\n' "$*" >&2; }

# ---- tools -------------------------------------------------------------------------------------
# libpcap-dev/pkg-config for the build, tshark and GNU time for the measurement.
# shellcheck source=../scripts/deps.sh
source "$ROOT/scripts/deps.sh"
store_edge_deps tshark time
command -v taskset >/dev/null 2>&1 || { echo "taskset (util-linux) is missing" >&2; exit 1; }
HAVE_CAPINFOS=0
command -v capinfos >/dev/null 2>&1 && HAVE_CAPINFOS=1

# ---- work dir ----------------------------------------------------------------------------------
if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
    KEEP=1
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/store-edge-bench.XXXXXX")
fi
cleanup() {
    if [ "$KEEP" -eq 1 ]; then
        log "kept work dir: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# "h:mm:ss" / "m:ss.ss" (GNU time's wall clock) -> seconds
to_secs() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.3f", s }' <<<"$1"; }
time_field() { sed -n "s/^[[:space:]]*$2: //p" "$1" | head -1; }

# ---- build -------------------------------------------------------------------------------------
log "building (cargo build --release -p edge-agent)"
(cd "$ROOT" && cargo build --release -p edge-agent --quiet)
[ -x "$TARGET_DIR/release/store-edge" ] || { echo "no binary in $TARGET_DIR/release" >&2; exit 1; }
BIN=$WORK/store-edge
cp "$TARGET_DIR/release/store-edge" "$BIN"
GIT_STATE=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
[ "$DIRTY" -gt 0 ] && GIT_STATE="$GIT_STATE + $DIRTY modified file(s)"

# ---- capture -----------------------------------------------------------------------------------
CAP=$WORK/capture
# Legacy phones (one MAC per visit): the load case is a hundred thousand devices followed at
# once, which per-scan MACs never give.
SIM_ARGS=(--seed "$SEED" --date 2026-11-20 --visitors "$VISITORS" --passersby "$PASSERSBY"
    --zones 1 --open-hours 1 --staff 0 --history-days 0 --phone-mix legacy)
STAMP="$(sha256sum "$BIN" | cut -c1-16) ${SIM_ARGS[*]}"
PCAP=$CAP/wifi-entrance.pcap
SIM_SECS=reused
if [ -f "$PCAP" ] && [ -f "$CAP/.bench-stamp" ] && [ "$(cat "$CAP/.bench-stamp")" = "$STAMP" ]; then
    log "reusing capture in $CAP"
else
    rm -rf "$CAP"
    log "simulating: store-edge simulate ${SIM_ARGS[*]}"
    /usr/bin/time -v -o "$WORK/simulate.time" "$BIN" simulate --out "$CAP" "${SIM_ARGS[@]}" \
        >"$WORK/simulate.log" 2>&1
    SIM_SECS=$(to_secs "$(time_field "$WORK/simulate.time" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
    echo "$STAMP" >"$CAP/.bench-stamp"
fi
PCAP_BYTES=$(stat -c %s "$PCAP")

CAPINFOS_RECORDS=
if [ "$HAVE_CAPINFOS" -eq 1 ]; then
    CAPINFOS_RECORDS=$(capinfos -M -c -T -r "$PCAP" | awk -F'\t' 'END { print $2 }')
fi
# Warm the page cache so that neither tool is the one paying for the first read.
cat "$PCAP" >/dev/null

# ---- store-edge --------------------------------------------------------------------------------
# timed_run DIR NAME: `store-edge run --once` of DIR/config.toml on a fresh data dir, pinned to
# $CPU, log and GNU time output in $WORK/NAME.{log,time}; sets RUN_WALL, RUN_CPU (user+sys),
# RUN_RSS (KiB) and RUN_RECORDS (capture records read, Wi-Fi sources only).
timed_run() {
    rm -rf "$1/data"
    taskset -c "$CPU" /usr/bin/time -v -o "$WORK/$2.time" \
        "$BIN" run --config "$1/config.toml" --once --log warn >"$WORK/$2.log" 2>&1 || {
        cat "$WORK/$2.log" "$WORK/$2.time" >&2
        exit 1
    }
    local t=$WORK/$2.time
    RUN_WALL=$(to_secs "$(time_field "$t" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
    RUN_CPU=$(awk -v u="$(time_field "$t" 'User time (seconds)')" -v s="$(time_field "$t" 'System time (seconds)')" \
        'BEGIN { printf "%.2f", u + s }')
    RUN_RSS=$(time_field "$t" 'Maximum resident set size (kbytes)')
    RUN_RECORDS=$(awk '/ records read, [0-9]+ sightings/ { for (i = 1; i < NF; i++) if ($(i + 1) == "records" && $(i + 2) == "read,") n += $i }
        END { print n + 0 }' "$WORK/$2.log")
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
SE_WALLS=()
SE_CPUS=()
SE_RSS_MAX=0
SE_RECORDS=
SE_PEAK=
for i in $(seq 1 "$RUNS"); do
    log "store-edge run $i/$RUNS: taskset -c $CPU store-edge run --config $CAP/config.toml --once"
    timed_run "$CAP" "store-edge.$i"
    wall=$RUN_WALL cpu=$RUN_CPU rss=$RUN_RSS records=$RUN_RECORDS
    peak=$(sed -n 's/.*peak \([0-9]*\) devices tracked.*/\1/p' "$WORK/store-edge.$i.log")
    sed 's/^/    /' "$WORK/store-edge.$i.log" >&2
    log "  wall ${wall}s (user+sys ${cpu}s), $(awk -v n="$records" -v s="$wall" 'BEGIN { printf "%.0f", n / s }') records/s, max RSS ${rss} KiB"
    SE_WALLS+=("$wall")
    SE_CPUS+=("$cpu")
    [ "$rss" -gt "$SE_RSS_MAX" ] && SE_RSS_MAX=$rss
    SE_RECORDS=$records
    SE_PEAK=$peak
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
BEST_I=0
for i in "${!SE_WALLS[@]}"; do
    awk -v a="${SE_WALLS[$i]}" -v b="${SE_WALLS[$BEST_I]}" 'BEGIN { exit !(a < b) }' && BEST_I=$i
done
SE_BEST=${SE_WALLS[$BEST_I]}
SE_BEST_CPU=${SE_CPUS[$BEST_I]}
SE_MED=$(median "${SE_WALLS[@]}")
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
SE_RATE=$(rate_of "$SE_RECORDS" "$SE_BEST")
SE_RATE_MED=$(rate_of "$SE_RECORDS" "$SE_MED")

# ---- tshark ------------------------------------------------------------------------------------
log "tshark: taskset -c $CPU tshark -r FILE -Y wlan.fc.type_subtype==4 -T fields -e wlan.sa -e radiotap.dbm_antsignal"
OTHER_CPU=$(((CPU + 1) % $(nproc)))
TS_LINES=$(taskset -c "$CPU" /usr/bin/time -v -o "$WORK/tshark.time" \
    tshark -r "$PCAP" -Y 'wlan.fc.type_subtype==4' -T fields -e wlan.sa -e radiotap.dbm_antsignal \
    2>"$WORK/tshark.err" | taskset -c "$OTHER_CPU" wc -l)
grep -q 'Exit status: 0' "$WORK/tshark.time" || { cat "$WORK/tshark.err" "$WORK/tshark.time" >&2; exit 1; }
TS_WALL=$(to_secs "$(time_field "$WORK/tshark.time" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
TS_CPU=$(awk -v u="$(time_field "$WORK/tshark.time" 'User time (seconds)')" \
    -v s="$(time_field "$WORK/tshark.time" 'System time (seconds)')" 'BEGIN { printf "%.2f", u + s }')
TS_RSS=$(time_field "$WORK/tshark.time" 'Maximum resident set size (kbytes)')
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RECORDS=${CAPINFOS_RECORDS:-$SE_RECORDS}
TS_RATE=$(rate_of "$RECORDS" "$TS_WALL")
RATIO=$(awk -v a="$TS_WALL" -v b="$SE_BEST" 'BEGIN { printf "%.1f", a / b }')
RATIO_MED=$(awk -v a="$TS_WALL" -v b="$SE_MED" 'BEGIN { printf "%.1f", a / b }')

# ---- multi-day capture -------------------------------------------------------------------------
MD_RATE=0
MD_RSS=0
MD_RECORDS=0
MD_SUMMARY=
if [ "$MD_DAYS" -gt 0 ]; then
    MD=$WORK/multiday
    MD_ARGS=(--seed "$SEED" --date 2026-11-20 --days "$MD_DAYS" --visitors "$MD_VISITORS" --zones 1
        --phone-mix legacy)
    MD_STAMP="$(sha256sum "$BIN" | cut -c1-16) ${MD_ARGS[*]}"
    if [ -f "$MD/.bench-stamp" ] && [ "$(cat "$MD/.bench-stamp")" = "$MD_STAMP" ]; then
        log "reusing multi-day capture in $MD"
    else
        rm -rf "$MD"
        log "simulating: store-edge simulate ${MD_ARGS[*]}"
        "$BIN" simulate --out "$MD" "${MD_ARGS[@]}" >"$WORK/multiday-simulate.log" 2>&1
        echo "$MD_STAMP" >"$MD/.bench-stamp"
    fi
    cat "$MD"/*.pcap >/dev/null
    MD_BEST=
    for i in $(seq 1 "$RUNS"); do
        log "multi-day run $i/$RUNS"
        timed_run "$MD" "multiday.$i"
        wall=$RUN_WALL rss=$RUN_RSS MD_RECORDS=$RUN_RECORDS
        [ "$rss" -gt "$MD_RSS" ] && MD_RSS=$rss
        if [ -z "$MD_BEST" ] || awk -v a="$wall" -v b="$MD_BEST" 'BEGIN { exit !(a < b) }'; then
            MD_BEST=$wall
            MD_SUMMARY=$(head -1 "$WORK/multiday.$i.log")
        fi
        log "  wall ${wall}s, max RSS ${rss} KiB"
    done
    MD_RATE=$(rate_of "$MD_RECORDS" "$MD_BEST")
fi

# ---- report ------------------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
SE_RSS_MIB=$(mib "$SE_RSS_MAX")
echo
echo "store-edge replay benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), pinned to CPU $CPU; load avg before $LOAD_BEFORE, after $LOAD_AFTER"
echo "binary: store-edge from $GIT_STATE"
echo "capture: simulate ${SIM_ARGS[*]}"
echo "         $RECORDS records, $((PCAP_BYTES / 1000000)) MB (simulate: ${SIM_SECS}s)"
[ -n "$CAPINFOS_RECORDS" ] && [ "$CAPINFOS_RECORDS" != "$SE_RECORDS" ] &&
    echo "WARNING: capinfos counts $CAPINFOS_RECORDS records, store-edge read $SE_RECORDS"
echo
row() { printf '%-20s %10s %8s %8s %11s %8s\n' "$@"; }
row "" records wall_s cpu_s records/s RSS_MiB
row "store-edge (best)" "$SE_RECORDS" "$SE_BEST" "$SE_BEST_CPU" "$SE_RATE" "$SE_RSS_MIB"
row "store-edge (median)" "$SE_RECORDS" "$SE_MED" "$(median "${SE_CPUS[@]}")" "$SE_RATE_MED" ""
row tshark "$RECORDS" "$TS_WALL" "$TS_CPU" "$TS_RATE" "$(mib "$TS_RSS")"
echo "(cpu_s = user+sys; store-edge RSS is the max over all runs)"
echo
echo "store-edge runs: wall ${SE_WALLS[*]} s; user+sys ${SE_CPUS[*]} s; peak $SE_PEAK devices tracked"
echo "tshark: $TS_LINES probe-request lines"
echo "speed ratio (tshark wall / store-edge wall): ${RATIO}x best, ${RATIO_MED}x median"
echo

fail=0
check() { # name ok value target
    if [ "$2" -eq 1 ]; then
        printf '  PASS  %-24s %s (target %s)\n' "$1" "$3" "$4"
    else
        printf '  FAIL  %-24s %s (target %s)\n' "$1" "$3" "$4"
        fail=1
    fi
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }' && echo 1 || echo 0; }
echo "targets:"
check "records in capture" "$(ge "$RECORDS" "$MIN_RECORDS")" "$RECORDS" ">= $MIN_RECORDS"
check "peak devices tracked" "$(ge "${SE_PEAK:-0}" "$MIN_PEAK")" "${SE_PEAK:-?}" ">= $MIN_PEAK"
check "store-edge records/s" "$(ge "$SE_RATE" "$MIN_RATE")" "$SE_RATE (median $SE_RATE_MED)" ">= $MIN_RATE"
check "speed vs tshark" "$(ge "$RATIO" "$MIN_RATIO")" "${RATIO}x" ">= ${MIN_RATIO}x"
check "store-edge peak RSS" "$(ge "$((MAX_RSS_MB * 1000000))" "$((SE_RSS_MAX * 1024))")" \
    "$(awk -v k="$SE_RSS_MAX" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }') MB ($SE_RSS_MAX KiB)" "<= $MAX_RSS_MB MB"
check "tshark output" "$(ge "$TS_LINES" 1)" "$TS_LINES lines" "> 0"
if [ "$MD_DAYS" -gt 0 ]; then
    echo
    echo "multi-day capture: simulate ${MD_ARGS[*]}: $MD_RECORDS records"
    echo "  best run: $MD_SUMMARY"
    check "multi-day records/s" "$(ge "$MD_RATE" "$MIN_RATE")" "$MD_RATE" ">= $MIN_RATE"
    check "multi-day peak RSS" "$(ge "$((MAX_RSS_MB * 1000000))" "$((MD_RSS * 1024))")" \
        "$(awk -v k="$MD_RSS" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }') MB ($MD_RSS KiB)" "<= $MAX_RSS_MB MB"
fi
echo
if [ "$fail" -ne 0 ]; then
    echo "RESULT: FAIL"
    exit 1
fi
echo "RESULT: PASS"
