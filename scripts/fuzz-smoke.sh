#!/usr/bin/env bash
# Short fuzz run, as CI does it: every target of edge/wire/fuzz and edge/agent/fuzz runs for
# FUZZ_SECONDS (default 10) from its seeds, on a scratch copy of them (seeds/ is never written),
# as many at once as there are cores. Fails if a target panics, leaks, times out or cannot be
# built; the crashing input is kept in the crate's artifacts/<target>/.
#
# By default the targets are built on the default (stable) toolchain, without a sanitizer and
# unoptimised (`cargo fuzz build -s none --dev`): the crates are safe Rust, so what a short run
# can find is a panic, and this build of the agent's dependency tree takes about 3 minutes cold
# where the AddressSanitizer release build takes over 20. The long runs use nightly and ASan:
# FUZZ_TOOLCHAIN=nightly FUZZ_BUILD_FLAGS= scripts/fuzz-smoke.sh, or the crates' READMEs.
# Installs cargo-fuzz 0.13.2 when it is missing. Builds go to $CARGO_TARGET_DIR (default
# target/fuzz, shared by both crates).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/deps.sh
store_edge_deps

# The default toolchain (the project builds on stable) unless FUZZ_TOOLCHAIN names one.
toolchain=(${FUZZ_TOOLCHAIN:+"+$FUZZ_TOOLCHAIN"})
seconds=${FUZZ_SECONDS:-10}
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS--s none --dev}"
jobs=${FUZZ_JOBS:-$(nproc)}
crates=(edge/wire/fuzz edge/agent/fuzz)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/fuzz}

if [[ -n ${FUZZ_TOOLCHAIN:-} ]] && ! rustup run "$FUZZ_TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the Rust toolchain '$FUZZ_TOOLCHAIN' is not installed" >&2
    echo "fuzz-smoke: install it with: rustup toolchain install $FUZZ_TOOLCHAIN" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
start=$SECONDS

# One target's run; its outcome goes to $scratch/<crate>-<target>.result.
run_one() {
    local crate=$1 target=$2
    local name=${crate//\//-}-$target
    cd "$root/$crate"
    if [[ ! -d seeds/$target ]]; then
        echo "$crate:$target has no seeds/$target" >"$scratch/$name.result"
        return
    fi
    cp -r "seeds/$target" "$scratch/$name.corpus"
    # -timeout: one input may take at most 10 s; -rss_limit_mb: a leak or a blow-up fails.
    if cargo "${toolchain[@]}" fuzz run "${build_flags[@]}" "$target" "$scratch/$name.corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$name.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$scratch/$name.log" | tail -1 || true)
        printf 'fuzz-smoke: %-16s %-14s ok  %s\n' "$crate" "$target" "${runs:-?}" >&2
    else
        tail -n 40 "$scratch/$name.log" >&2
        printf 'fuzz-smoke: %-16s %-14s FAILED (input in %s/artifacts/%s/)\n' \
            "$crate" "$target" "$crate" "$target" >&2
        echo "$crate:$target" >"$scratch/$name.result"
    fi
}

pairs=()
for crate in "${crates[@]}"; do
    cd "$root/$crate"
    echo "fuzz-smoke: building $crate (${FUZZ_TOOLCHAIN:-default toolchain} ${build_flags[*]})" >&2
    if ! cargo "${toolchain[@]}" fuzz build "${build_flags[@]}" >"$scratch/build.log" 2>&1; then
        tail -n 40 "$scratch/build.log" >&2
        echo "fuzz-smoke: $crate does not build" >&2
        exit 1
    fi
    listed=$(cargo "${toolchain[@]}" fuzz list)
    if [[ -z $listed ]]; then
        echo "fuzz-smoke: $crate lists no fuzz targets" >&2
        exit 1
    fi
    for target in $listed; do
        pairs+=("$crate $target")
    done
done
echo "fuzz-smoke: built in $((SECONDS - start)) s; running ${#pairs[@]} targets, $jobs at a time" >&2

for pair in "${pairs[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do
        wait -n || true
    done
    # shellcheck disable=SC2086 # "crate target"
    run_one $pair &
done
wait

failed=()
for f in "$scratch"/*.result; do
    [[ -e $f ]] && failed+=("$(cat "$f")")
done
echo "fuzz-smoke: ${#pairs[@]} targets done in $((SECONDS - start)) s" >&2
if ((${#failed[@]})); then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    exit 1
fi
