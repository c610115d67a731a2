#!/usr/bin/env bash
# Installs the system packages store-edge needs to build and test, where missing.
# Sourced by scripts/demo.sh, scripts/test.sh and .ci/run; safe to run again.
#   libpcap-dev  libpcap headers for the `pcap` crate (live capture and file replay)
#   pkg-config   lets the build find libpcap
#   extra packages can be passed as arguments (e.g. tshark for bench/replay.sh)
set -euo pipefail

store_edge_deps() {
    local want=(libpcap-dev pkg-config "$@")
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "store-edge: installing ${missing[*]}" >&2
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        # tshark asks whether non-root users may capture; answer "no" without a prompt.
        echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo[@]}" debconf-set-selections 2>/dev/null || true
        # A mirror caught mid-sync fails one index (seen for armhf once foreign architectures
        # are added for cross builds); the others still serve what is installed here.
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
            echo "store-edge: apt-get update reported errors; installing from the indexes it has" >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        echo "store-edge: cargo not found; install Rust from https://rustup.rs (rust-version in Cargo.toml)" >&2
        return 1
    fi
}
