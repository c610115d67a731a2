#!/usr/bin/env bash
# Short fuzz run, as CI does it: every target of edge/wire/fuzz and edge/agent/fuzz runs for
# FUZZ_SECONDS (default 10) from its seeds, on a scratch copy of them (seeds/ is never written).
# Fails if a target crashes, leaks, times out or cannot be built; the crashing input is kept in
# the crate's artifacts/<target>/. Needs the nightly toolchain (FUZZ_TOOLCHAIN, default
# `nightly`); installs cargo-fuzz 0.13.2 when it is missing. Builds go to $CARGO_TARGET_DIR
# (default target/fuzz, shared by both crates).
# The long runs are manual: see edge/wire/fuzz/README.md and edge/agent/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/deps.sh
store_edge_deps

toolchain=${FUZZ_TOOLCHAIN:-nightly}
seconds=${FUZZ_SECONDS:-10}
crates=(edge/wire/fuzz edge/agent/fuzz)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/fuzz}

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the Rust toolchain '$toolchain' is not installed; cargo-fuzz needs nightly" >&2
    echo "fuzz-smoke: install it with: rustup toolchain install $toolchain" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz 0.13.2" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
start=$SECONDS
failed=()
for crate in "${crates[@]}"; do
    cd "$root/$crate"
    echo "fuzz-smoke: building $crate (nightly, ASan)" >&2
    if ! cargo "+$toolchain" fuzz build >"$scratch/build.log" 2>&1; then
        tail -n 40 "$scratch/build.log" >&2
        echo "fuzz-smoke: $crate does not build" >&2
        exit 1
    fi
    for target in $(cargo "+$toolchain" fuzz list); do
        if [[ ! -d seeds/$target ]]; then
            echo "fuzz-smoke: $crate has no seeds/$target" >&2
            failed+=("$crate:$target (no seeds)")
            continue
        fi
        corpus=$scratch/${crate//\//-}-$target
        cp -r "seeds/$target" "$corpus"
        log=$scratch/$target.log
        # -timeout: one input may take at most 10 s; the run stops after $seconds.
        if cargo "+$toolchain" fuzz run "$target" "$corpus" -- \
            -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
            runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 || true)
            printf 'fuzz-smoke: %-16s %-14s ok  %s\n' "$crate" "$target" "${runs:-?}" >&2
        else
            tail -n 40 "$log" >&2
            printf 'fuzz-smoke: %-16s %-14s FAILED (input in %s/artifacts/%s/)\n' \
                "$crate" "$target" "$crate" "$target" >&2
            failed+=("$crate:$target")
        fi
    done
done
echo "fuzz-smoke: done in $((SECONDS - start)) s" >&2
if ((${#failed[@]})); then
    echo "fuzz-smoke: failed: ${failed[*]}" >&2
    exit 1
fi
