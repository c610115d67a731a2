#!/usr/bin/env bash
# Builds the Debian package of store-edge for one architecture from an already built binary, with
# plain `dpkg-deb --build --root-owner-group` from a staged tree (no cargo-deb, nothing downloaded).
#
# Usage: cross/package.sh ARCH BINARY [OUTDIR]
#   ARCH    Debian architecture: arm64, armhf or amd64 (checked against the binary's ELF header)
#   BINARY  a built store-edge executable, e.g. target/cross/store-edge-aarch64 (stripping it is
#           the caller's business)
#   OUTDIR  where store-edge_<version>_<ARCH>.deb goes (default: target/cross)
# Prints the path of the .deb on stdout, progress on stderr.
#
# The package: /usr/bin/store-edge, /lib/systemd/system/store-edge.service (cross/), the conffile
# /etc/store-edge/config.toml (cross/config.example.toml), /usr/share/store-edge/hardware-profiles/
# and /usr/share/doc/store-edge/{README.md,copyright}; maintainer scripts from cross/debian/.
# Depends: libc6 at the newest GLIBC_x.y symbol version the binary uses, plus one package per
# other shared library it links (readelf); an unknown library is an error, not a silent omission.
# Environment: SOURCE_DATE_EPOCH, DPKG_DEB_COMPRESSOR_TYPE/LEVEL, DPKG_DEB_THREADS_MAX as dpkg-deb.
set -euo pipefail
umask 022

die() { echo "package: $*" >&2; exit 1; }
usage() { sed -n '4,9s/^# \{0,1\}//p' "$0" >&2; exit 2; }

if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
arch=$1
root=$(cd "$(dirname "$0")/.." && pwd)
# BINARY and OUTDIR are relative to the caller's directory.
[ -f "$2" ] || die "no such file: $2"
binary=$(readlink -f -- "$2")
[ -x "$binary" ] || die "$2 is not executable"
outdir=${3:-$root/target/cross}
mkdir -p -- "$outdir"
outdir=$(cd -- "$outdir" && pwd)

for tool in dpkg-deb readelf od md5sum du; do
    command -v "$tool" >/dev/null || die "$tool not found (dpkg-deb: dpkg; readelf: binutils)"
done

# --- version ------------------------------------------------------------------------------
# edge/agent/Cargo.toml's `version`; `version.workspace = true` means [workspace.package].
agent_toml=$root/edge/agent/Cargo.toml
version=$(sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$agent_toml" | head -n1)
if [ -z "$version" ] && grep -Eq '^version(\.workspace[[:space:]]*=[[:space:]]*true|[[:space:]]*=[[:space:]]*\{[[:space:]]*workspace[[:space:]]*=[[:space:]]*true)' "$agent_toml"; then
    version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)
fi
[ -n "$version" ] || die "no version in $agent_toml (nor [workspace.package] of Cargo.toml)"
# A SemVer pre-release (1.2.0-rc.1) must sort before the release: Debian spells it 1.2.0~rc.1.
deb_version=${version/-/\~}
[[ $deb_version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '$version' is not usable as a Debian version"
license=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^license[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$license" ] || die "no license in [workspace.package] of Cargo.toml"

# --- the binary must be for ARCH ------------------------------------------------------------
[ "$(od -An -tx1 -N4 "$binary" | tr -d ' \n')" = 7f454c46 ] || die "$binary is not an ELF file"
elf_class=$(od -An -tu1 -j4 -N1 "$binary" | tr -d ' ')     # 1: 32-bit, 2: 64-bit
elf_data=$(od -An -tu1 -j5 -N1 "$binary" | tr -d ' ')      # 1: little-endian
elf_machine=$(od -An -tu2 -j18 -N2 --endian=little "$binary" | tr -d ' ')
case $arch in
    amd64) want="2 1 62" ;;    # EM_X86_64
    arm64) want="2 1 183" ;;   # EM_AARCH64
    armhf) want="1 1 40" ;;    # EM_ARM
    *) die "unsupported ARCH '$arch' (arm64, armhf or amd64)" ;;
esac
[ "$elf_class $elf_data $elf_machine" = "$want" ] ||
    die "$binary is ELF class $elf_class, data $elf_data, machine $elf_machine; $arch needs $want"
if [ "$arch" = armhf ]; then
    # e_flags of ELF32 at offset 36: EF_ARM_ABI_FLOAT_HARD (0x400), else it is an armel build.
    elf_flags=$(od -An -tu4 -j36 -N4 --endian=little "$binary" | tr -d ' ')
    [ $((elf_flags & 0x400)) -ne 0 ] || die "$binary is not a hard-float (gnueabihf) build"
fi

# --- Depends from the libraries the binary links --------------------------------------------
libgcc=""
while read -r lib; do
    case $lib in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | ld-linux*.so.*) ;;
        libgcc_s.so.1) libgcc="libgcc-s1, " ;;
        libpcap.so.0.8) ;;
        *) die "$binary links $lib, which no Depends: of this script covers; add its package" ;;
    esac
done < <(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
readelf -d "$binary" | grep -q '(NEEDED).*\[libpcap\.so\.0\.8\]' ||
    die "$binary does not link libpcap.so.0.8; is it a store-edge binary?"
glibc=$(readelf -V --wide "$binary" | sed -n '/\.gnu\.version_r/,$p' |
    sed -n 's/.*Name: GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -V | tail -n1)
libc="libc6"
[ -z "$glibc" ] || libc="libc6 (>= $glibc)"
depends="$libc, ${libgcc}libpcap0.8, adduser"

# --- stage ------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/store-edge-deb.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
name=store-edge_${deb_version}_${arch}
stage=$work/$name

install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/usr/share/store-edge" "$stage/usr/share/doc/store-edge"
# Shipped closed; postinst makes it root:store-edge 0750 (the config may hold tokens, and the
# secrets live next to it).
install -d -m 0750 "$stage/etc/store-edge"
install -m 0755 "$binary" "$stage/usr/bin/store-edge"
install -m 0644 "$root/cross/store-edge.service" "$stage/lib/systemd/system/store-edge.service"
install -m 0644 "$root/cross/config.example.toml" "$stage/etc/store-edge/config.toml"
cp -R "$root/hardware-profiles" "$stage/usr/share/store-edge/hardware-profiles"
[ -z "$(find "$stage/usr/share/store-edge" ! -type f ! -type d)" ] ||
    die "hardware-profiles/ holds something that is neither a file nor a directory"
find "$stage/usr/share/store-edge" -type d -exec chmod 0755 {} +
find "$stage/usr/share/store-edge" -type f -exec chmod 0644 {} +
install -m 0644 "$root/README.md" "$stage/usr/share/doc/store-edge/README.md"
cat >"$stage/usr/share/doc/store-edge/copyright" <<EOF
store-edge: edge agent for retail store gateways.

Copyright: the store-edge developers; see the store-edge source repository for authorship.
License: $license, as declared in the source's Cargo.toml. On Debian systems the full text is
in /usr/share/common-licenses/$license.

The store-edge binary statically links third-party Rust crates (listed in Cargo.lock in the
source repository), each under its own license; see the source repository for them.
EOF
chmod 0644 "$stage/usr/share/doc/store-edge/copyright"

# --- control files ---------------------------------------------------------------------------
for script in postinst prerm postrm; do
    install -m 0755 "$root/cross/debian/$script" "$stage/DEBIAN/$script"
done
echo /etc/store-edge/config.toml >"$stage/DEBIAN/conffiles"
# md5sums of everything but the conffiles (dpkg tracks those itself), as dh_md5sums writes it.
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
    grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles) | tr '\n' '\0' | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
# Installed-Size in KiB as dpkg-gencontrol counts it: each file's size rounded up, 1 per other
# entry. Not `du -sk`: the staged copy of a linker's output can be sparse and then takes fewer
# blocks here than dpkg will write on the gateway.
installed_size=$(find "$stage" -mindepth 1 \( -path "$stage/DEBIAN" -prune \) -o \( -type f -printf '%s\n' \) -o -printf '1024\n' |
    awk '{ kib += int(($1 + 1023) / 1024) } END { print kib + 0 }')
cat >"$stage/DEBIAN/control" <<EOF
Package: store-edge
Version: $deb_version
Architecture: $arch
Maintainer: store-edge maintainers <store-edge@localhost>
Installed-Size: $installed_size
Depends: $depends
Recommends: iw
Section: net
Priority: optional
Description: edge agent for retail store gateways
 store-edge runs on a store's gateway and turns what the store's hardware
 already emits (Wi-Fi probes from monitor-mode adapters, door people-counters,
 receipts the POS sends to its printer) into visits, footfall and dwell,
 kept in SQLite on the gateway; raw MAC addresses never leave the process.
 .
 The service is enabled but not started on installation: edit
 /etc/store-edge/config.toml and create the secrets file first, then run
 "systemctl start store-edge".
EOF
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

deb=$outdir/$name.deb
echo "package: building $deb (version $deb_version, Depends: $depends)" >&2
dpkg-deb --build --root-owner-group "$stage" "$deb" >&2
echo "$deb"
