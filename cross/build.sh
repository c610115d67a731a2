#!/usr/bin/env bash
# Builds release binaries of store-edge for Raspberry Pi class gateways on this Debian (bookworm)
# machine, from Debian's packages only:
#   - Debian's Rust (`rustc-web`/`cargo-web`, 1.96) and its target standard library
#     `libstd-rust-web-dev` for arm64/armhf, of exactly the same version;
#   - the gcc cross compilers (`gcc-aarch64-linux-gnu`, `gcc-arm-linux-gnueabihf`), which also
#     compile SQLite and ring and link;
#   - the target's libpcap and the libraries it needs, unpacked into a private sysroot
#     (`target/cross/sysroot-<arch>`), so the build machine's own packages are not touched
#     beyond the cross tools.
# Target packages are taken with `apt-get download` after `dpkg --add-architecture`; when the
# package index of an architecture is unusable (a mirror caught mid-sync), the same file is
# fetched from the Debian pool it names. Nothing else is downloaded.
#
# Usage: cross/build.sh [aarch64] [armv7]        (default: both)
# Output: target/cross/target/<triple>/release/store-edge, stripped: target/cross/store-edge-<arch>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/cross
mkdir -p "$work"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64 armv7)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# --- build tools -------------------------------------------------------------------------
need=()
for p in rustc-web cargo-web gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "cross: installing ${need[*]}" >&2
    $sudo apt-get update -qq || true
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
RUSTC_WEB=/usr/bin/rustc
CARGO_WEB=/usr/bin/cargo
rust_version=$(dpkg-query -W -f '${Version}' rustc-web)
echo "cross: $($RUSTC_WEB --version) (Debian rustc-web $rust_version)" >&2

# The foreign architectures, for `apt-get download` of target packages.
added=0
for a in arm64 armhf; do
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        $sudo dpkg --add-architecture "$a"
        added=1
    fi
done
if [ $added -eq 1 ]; then
    $sudo apt-get update -qq || true
fi

# Fetches package $1 (name:arch) at version $2 (empty: the candidate) into the current folder.
fetch_deb() {
    local pkg=$1 want=${2:-} name=${1%%:*} arch=${1##*:}
    if [ -n "$want" ]; then
        apt-get download -qq "$pkg=$want" 2>/dev/null && return 0
    else
        apt-get download -qq "$pkg" 2>/dev/null && return 0
        want=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    fi
    # The index for this architecture is missing or stale: take the file from the pool, where
    # the amd64 index (which did load) says this source package lives.
    local src filename base url
    src=$(apt-cache show "$name=$want" 2>/dev/null | awk '/^Filename:/ {print $2; exit}')
    [ -n "$src" ] || { echo "cross: no package $pkg $want in any index" >&2; return 1; }
    base=${src%/*}
    filename="${name}_${want//:/%3a}_${arch}.deb"
    for mirror in http://deb.debian.org/debian-security http://deb.debian.org/debian; do
        url="$mirror/$base/$filename"
        if curl -fsS -o "$filename" "$url"; then
            echo "cross: fetched $filename from the Debian pool" >&2
            return 0
        fi
    done
    echo "cross: cannot fetch $pkg $want" >&2
    return 1
}

# Unpacks the target's standard library and libpcap (with what it links) into a sysroot.
# The library list is libpcap0.8's dependency closure on bookworm, minus libc (which the cross
# compiler's own sysroot provides).
TARGET_LIBS="libpcap0.8 libpcap0.8-dev libdbus-1-3 libsystemd0 libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1 libibverbs1 libnl-3-200 libnl-route-3-200"
prepare_sysroot() {
    local arch=$1 triple=$2 dir=$work/sysroot-$1
    local stamp=$dir/.ready-$rust_version
    [ -f "$stamp" ] && return 0
    rm -rf "$dir" "$work/debs-$arch"
    mkdir -p "$dir" "$work/debs-$arch"
    (
        cd "$work/debs-$arch"
        fetch_deb "libstd-rust-web-dev:$arch" "$rust_version"
        for p in $TARGET_LIBS; do fetch_deb "$p:$arch"; done
    )
    for d in "$work/debs-$arch"/*.deb; do dpkg-deb -x "$d" "$dir"; done
    [ -d "$dir/usr/lib/rustlib/$triple/lib" ] || { echo "cross: no $triple standard library in libstd-rust-web-dev:$arch" >&2; exit 1; }
    # rustc takes the target's std from <sysroot>/lib/rustlib.
    mkdir -p "$dir/rust/lib"
    ln -sfn "$dir/usr/lib/rustlib" "$dir/rust/lib/rustlib"
    touch "$stamp"
}

for t in "${targets[@]}"; do
    case $t in
        aarch64) arch=arm64 triple=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu ;;
        armv7) arch=armhf triple=armv7-unknown-linux-gnueabihf gnu=arm-linux-gnueabihf ;;
        *) echo "cross: unknown target $t (aarch64, armv7)" >&2; exit 2 ;;
    esac
    prepare_sysroot "$arch" "$triple"
    sysroot=$work/sysroot-$arch
    libdir=$sysroot/usr/lib/$gnu
    up=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    echo "cross: building $triple" >&2
    env \
        RUSTC="$RUSTC_WEB" \
        "CARGO_TARGET_${up}_LINKER=$gnu-gcc" \
        "CARGO_TARGET_${up}_RUSTFLAGS=--sysroot=$sysroot/rust -L native=$libdir -C link-arg=-Wl,-rpath-link,$libdir -C link-arg=-Wl,-rpath-link,$sysroot/lib/$gnu" \
        "CC_${triple//-/_}=$gnu-gcc" \
        "AR_${triple//-/_}=$gnu-ar" \
        LIBPCAP_LIBDIR="$libdir" \
        LIBPCAP_VER=1.10.3 \
        CARGO_TARGET_DIR="$work/target" \
        "$CARGO_WEB" build --release --locked --target "$triple" -p edge-agent --bin store-edge
    out=$work/target/$triple/release/store-edge
    "$gnu-strip" -o "$work/store-edge-$t" "$out"
    size=$(stat -c %s "$work/store-edge-$t")
    echo "cross: $t binary $out; stripped $work/store-edge-$t: $size bytes ($((size / 1024 / 1024)) MiB)"
done
