#!/usr/bin/env bash
# Checks cross/package.sh end to end, for CI (as root, on Debian 12):
#   1. builds the .deb for this machine's architecture from a built binary;
#   2. prints `dpkg-deb --info` and `--contents`, checks the control fields, conffiles, md5sums
#      and the maintainer scripts;
#   3. unpacks it with `dpkg -x` into a scratch root and checks every file, its mode and content
#      (hardware profiles: same files as hardware-profiles/), and that nothing else is in it;
#   4. `systemd-analyze verify`s the unit as installed in the scratch root (any output fails);
#   5. runs the packaged binary with --version and --help;
#   6. as root, where mount namespaces are allowed: runs postinst/prerm/postrm in a private mount
#      namespace whose /etc, /var/lib/systemd and /var/log are throwaway copies, so the account
#      they create and the links they write never reach this machine.
# Prints "package check: ok" and exits 0 only if every check passed.
#
# Usage: cross/test-package.sh [BINARY]
#   BINARY  a built store-edge for this machine (default: target/debug/store-edge, else
#           target/release/store-edge)
# The scratch package is gzip-compressed unless DPKG_DEB_COMPRESSOR_TYPE says otherwise: xz takes
# minutes on an unstripped debug binary and the compressor is dpkg-deb's business, not ours.
set -euo pipefail
umask 022

root=$(cd "$(dirname "$0")/.." && pwd)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
die() { echo "package check: $*" >&2; exit 1; }
section() { printf '\n== %s\n' "$*"; }

# --- tools ------------------------------------------------------------------------------------
apt_install() { # PACKAGE: install it if we may, else explain
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "installing $1 (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null ||
            die "apt-get install $1 failed"
    else
        die "$2 not found: install the Debian package $1"
    fi
}
command -v dpkg-deb >/dev/null || die "dpkg-deb not found: this check needs a Debian system"
command -v systemd-analyze >/dev/null || apt_install systemd systemd-analyze
command -v systemd-analyze >/dev/null || die "systemd-analyze still not found after installing systemd"
command -v readelf >/dev/null || apt_install binutils readelf

# --- the binary -------------------------------------------------------------------------------
if [ $# -ge 1 ]; then
    binary=$(readlink -f -- "$1")
else
    binary=""
    for candidate in "$root/target/debug/store-edge" "$root/target/release/store-edge"; do
        if [ -x "$candidate" ]; then binary=$candidate; break; fi
    done
    [ -n "$binary" ] || die "no target/debug/store-edge nor target/release/store-edge; build one or pass BINARY"
fi
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "$binary is not an executable file"; fi
arch=$(dpkg --print-architecture)
echo "binary: $binary"
echo "architecture: $arch"

work=$(mktemp -d "${TMPDIR:-/tmp}/store-edge-pkgcheck.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
scratch=$work/root
ctl=$work/control
mkdir -p "$scratch" "$ctl"

# --- build ------------------------------------------------------------------------------------
section "cross/package.sh $arch $binary"
deb=$(DPKG_DEB_COMPRESSOR_TYPE=${DPKG_DEB_COMPRESSOR_TYPE:-gzip} "$root/cross/package.sh" "$arch" "$binary" "$work/out") ||
    die "cross/package.sh failed"
[ -f "$deb" ] || die "cross/package.sh printed '$deb', which is no file"
expected_version=$("$binary" --version | awk '{print $2}')
expected_version=${expected_version/-/\~}
[ "$(basename "$deb")" = "store-edge_${expected_version}_${arch}.deb" ] ||
    fail "package file is $(basename "$deb"), expected store-edge_${expected_version}_${arch}.deb"

section "dpkg-deb --info"
dpkg-deb --info "$deb"
section "dpkg-deb --contents"
contents=$(dpkg-deb --contents "$deb")
echo "$contents"

# --- control ----------------------------------------------------------------------------------
section "control fields (dpkg -I)"
field() { dpkg -I "$deb" control | sed -n "s/^$1: //p"; }
check_field() { # NAME EXPECTED (exact)
    local got
    got=$(field "$1")
    if [ "$got" = "$2" ]; then echo "ok   $1: $got"; else fail "$1 is '$got', expected '$2'"; fi
}
check_field Package store-edge
check_field Version "$expected_version"
check_field Architecture "$arch"
check_field Maintainer "store-edge maintainers <store-edge@localhost>"
check_field Recommends iw
check_field Section net
check_field Priority optional
depends=$(field Depends)
for dep in 'libc6 (>= [0-9.]*)' libpcap0.8 adduser; do
    if tr ',' '\n' <<<"$depends" | sed 's/^ *//' | grep -qx "$dep"; then
        echo "ok   Depends has $dep"
    else
        fail "Depends '$depends' lacks $dep"
    fi
done
description=$(dpkg -I "$deb" control | sed -n '/^Description:/,$p')
if [ "$(wc -l <<<"$description")" -ge 3 ]; then
    echo "ok   Description: synopsis and long text"
else
    fail "Description needs a synopsis and a long description"
fi

dpkg-deb --control "$deb" "$ctl"
if [ "$(cat "$ctl/conffiles")" = /etc/store-edge/config.toml ]; then
    echo "ok   conffiles: /etc/store-edge/config.toml"
else
    fail "conffiles is '$(cat "$ctl/conffiles")', expected /etc/store-edge/config.toml"
fi
for script in postinst prerm postrm; do
    f=$ctl/$script
    if [ ! -f "$f" ]; then fail "no $script"; continue; fi
    [ "$(stat -c %a "$f")" = 755 ] || fail "$script has mode $(stat -c %a "$f"), expected 755"
    [ "$(head -n1 "$f")" = "#!/bin/sh" ] || fail "$script does not start with #!/bin/sh"
    grep -qx 'set -e' "$f" || fail "$script has no 'set -e' line"
    if command -v dash >/dev/null; then dash -n "$f" || fail "$script: dash -n"; else sh -n "$f" || fail "$script: sh -n"; fi
    echo "ok   $script: 0755, #!/bin/sh, set -e, parses"
done
# Every entry of the data archive belongs to root (dpkg-deb --root-owner-group).
if awk '$2 != "root/root" {bad = 1; print "not root/root: " $0} END {exit bad}' <<<"$contents" >&2; then
    echo "ok   every entry is root/root"
else
    fail "entries not owned by root/root"
fi

# --- files in the scratch root ----------------------------------------------------------------
section "dpkg -x into $scratch"
dpkg -x "$deb" "$scratch"
check_path() { # PATH TYPE(f|d) MODE [SOURCE it must equal]
    local p=$scratch/$1 mode
    if [ "$2" = f ] && [ ! -f "$p" ]; then fail "/$1 missing (file)"; return; fi
    if [ "$2" = d ] && [ ! -d "$p" ]; then fail "/$1 missing (directory)"; return; fi
    mode=$(stat -c %a "$p")
    [ "$mode" = "$3" ] || { fail "/$1 has mode $mode, expected $3"; return; }
    if [ $# -ge 4 ] && ! cmp -s "$4" "$p"; then fail "/$1 differs from ${4#"$root"/}"; return; fi
    echo "ok   /$1 ($mode${4:+, same as ${4#"$root"/}})"
}
check_path usr/bin/store-edge f 755 "$binary"
[ -x "$scratch/usr/bin/store-edge" ] || fail "/usr/bin/store-edge is not executable"
check_path lib/systemd/system/store-edge.service f 644 "$root/cross/store-edge.service"
check_path etc/store-edge d 750
check_path etc/store-edge/config.toml f 644 "$root/cross/config.example.toml"
check_path usr/share/doc/store-edge/README.md f 644 "$root/README.md"
check_path usr/share/doc/store-edge/copyright f 644
[ -s "$scratch/usr/share/doc/store-edge/copyright" ] || fail "copyright is empty"
check_path usr/share/store-edge/hardware-profiles d 755

profiles_src=$(find "$root/hardware-profiles" -type f | wc -l)
profiles_pkg=$(find "$scratch/usr/share/store-edge/hardware-profiles" -type f | wc -l)
if [ "$profiles_src" -gt 0 ] && [ "$profiles_src" = "$profiles_pkg" ] &&
    diff -r "$root/hardware-profiles" "$scratch/usr/share/store-edge/hardware-profiles" >/dev/null; then
    echo "ok   hardware profiles: $profiles_pkg files, identical to hardware-profiles/"
else
    fail "hardware profiles: $profiles_pkg files in the package, $profiles_src in hardware-profiles/ (or contents differ)"
fi
bad_modes=$(find "$scratch/usr/share/store-edge" \( -type f ! -perm 0644 \) -o \( -type d ! -perm 0755 \))
[ -z "$bad_modes" ] || fail "hardware profile entries not 0644/0755: $bad_modes"

unexpected=$(find "$scratch" ! -type d ! -path "$scratch/usr/share/store-edge/hardware-profiles/*" -printf '%P\n' | sort |
    grep -vxF -e usr/bin/store-edge -e lib/systemd/system/store-edge.service -e etc/store-edge/config.toml \
        -e usr/share/doc/store-edge/README.md -e usr/share/doc/store-edge/copyright || true)
if [ -z "$unexpected" ]; then echo "ok   no other files"; else fail "unexpected files in the package: $unexpected"; fi

if (cd "$scratch" && md5sum --check --quiet "$ctl/md5sums"); then
    echo "ok   md5sums match ($(wc -l <"$ctl/md5sums") files)"
else
    fail "md5sums do not match the unpacked files"
fi
if grep -q ' etc/store-edge/config.toml$' "$ctl/md5sums"; then fail "md5sums lists the conffile"; fi
# Installed-Size against the unpacked tree: file sizes rounded up to KiB, 1 KiB per directory.
installed_size=$(field Installed-Size)
actual_size=$(find "$scratch" -mindepth 1 \( -type f -printf '%s\n' \) -o -printf '1024\n' |
    awk '{ kib += int(($1 + 1023) / 1024) } END { print kib + 0 }')
if [ "$installed_size" = "$actual_size" ]; then
    echo "ok   Installed-Size: $installed_size KiB, as unpacked"
else
    fail "Installed-Size '$installed_size' KiB, but the unpacked tree adds up to $actual_size KiB"
fi

# --- systemd-analyze verify -------------------------------------------------------------------
# systemd 252's `verify --root=` loads the unit from the scratch root and checks that ExecStart's
# binary exists and is executable *in that root* (shown by the negative check first). A warning
# does not change its exit code, so any output at all is a failure.
section "systemd-analyze verify ($(systemd-analyze --version | head -n1))"
verify() { # ROOT RECURSIVE-ERRORS -> prints output, returns 1 on any output or failure
    local out rc=0
    out=$(systemd-analyze verify --root="$1" --recursive-errors="$2" store-edge.service 2>&1) || rc=$?
    [ -z "$out" ] || printf '%s\n' "$out"
    [ "$rc" -eq 0 ] && [ -z "$out" ]
}
neg=$work/verify-negative
install -D -m 0644 "$scratch/lib/systemd/system/store-edge.service" "$neg/lib/systemd/system/store-edge.service"
if out=$(verify "$neg" no 2>&1); then
    fail "verify passed without /usr/bin/store-edge in its root: it would not catch a missing binary"
elif grep -q 'store-edge is not executable' <<<"$out"; then
    echo "ok   (verify catches a root without /usr/bin/store-edge)"
else
    fail "verify without the binary said something else: $out"
fi
# a) The unit alone, as unpacked: syntax, every setting, ExecStart's binary.
if verify "$scratch" no; then
    echo "ok   verify --root=<scratch> --recursive-errors=no: no output"
else
    fail "systemd-analyze verify of the unpacked unit"
fi
# b) With its dependencies too (network-online.target, modprobe@.service, multi-user.target): the
#    scratch root has no systemd units of its own, so this machine's (/lib/systemd/system, i.e.
#    a Debian 12 system's) are copied next to it first, never over the package's file.
cp -an /lib/systemd/system/. "$scratch/lib/systemd/system/"
cmp -s "$root/cross/store-edge.service" "$scratch/lib/systemd/system/store-edge.service" ||
    fail "the package's unit changed while copying the system units"
if verify "$scratch" yes; then
    echo "ok   verify --root=<scratch + system units>: no output"
else
    fail "systemd-analyze verify with dependencies"
fi

# --- the packaged binary runs -----------------------------------------------------------------
section "$scratch/usr/bin/store-edge --version / --help"
if "$scratch/usr/bin/store-edge" --version && "$scratch/usr/bin/store-edge" --help; then
    echo "ok   the packaged binary runs"
else
    fail "the packaged binary does not run"
fi

# --- maintainer scripts in a private mount namespace ------------------------------------------
section "postinst / prerm / postrm in a private mount namespace"
ns_check() { # runs inside `unshare --mount`: the private mounts die with it
    set -euo pipefail
    local priv=$1 scratch=$2 ctl=$3 f
    cp -a /etc "$priv/etc"
    cp -a /var/lib/systemd "$priv/var-lib-systemd"
    mkdir -p "$priv/var-log" "$priv/run-systemd" "$priv/units"
    # Start from a machine without the account, whatever this one has.
    for f in passwd shadow group gshadow; do
        [ ! -f "$priv/etc/$f" ] || sed -i '/^store-edge:/d' "$priv/etc/$f"
    done
    for f in group gshadow; do
        [ -f "$priv/etc/$f" ] || continue
        awk -F: -v OFS=: '{ n = split($4, m, ","); s = ""
            for (i = 1; i <= n; i++) if (m[i] != "store-edge") s = s (s == "" ? "" : ",") m[i]
            $4 = s; print }' "$priv/etc/$f" >"$priv/$f.new"
        cat "$priv/$f.new" >"$priv/etc/$f" && rm -f "$priv/$f.new"
    done
    mount --bind "$priv/etc" /etc
    mount --bind "$priv/var-lib-systemd" /var/lib/systemd
    mount --bind "$priv/var-log" /var/log
    # No running systemd here: postinst must take its offline path and touch no real manager.
    if [ -d /run/systemd ]; then mount --bind "$priv/run-systemd" /run/systemd; fi
    # deb-systemd-helper reads the unit from /lib/systemd/system: this machine's units plus the
    # package's (as dpkg would have unpacked it).
    cp -a /lib/systemd/system/. "$priv/units/"
    cp -a "$scratch/lib/systemd/system/store-edge.service" "$priv/units/"
    mount --bind "$priv/units" /lib/systemd/system
    # What dpkg unpacks before postinst runs.
    cp -a "$scratch/etc/store-edge" /etc/store-edge

    # What dpkg exports to maintainer scripts (deb-systemd-helper refuses to run without it).
    export DPKG_MAINTSCRIPT_PACKAGE=store-edge DPKG_MAINTSCRIPT_ARCH=$4 DPKG_ROOT=""
    local home_existed=no
    [ ! -e /var/lib/store-edge ] || home_existed=yes
    DPKG_MAINTSCRIPT_NAME=postinst sh "$ctl/postinst" configure "" || { echo "FAIL: postinst configure (install) exited $?"; return 1; }
    local pw uid
    pw=$(getent passwd store-edge) || { echo "FAIL: no user store-edge after postinst"; return 1; }
    uid=$(cut -d: -f3 <<<"$pw")
    [ "$uid" -lt 1000 ] || { echo "FAIL: store-edge has uid $uid, not a system uid"; return 1; }
    [ "$(cut -d: -f6 <<<"$pw")" = /var/lib/store-edge ] || { echo "FAIL: home is not /var/lib/store-edge: $pw"; return 1; }
    getent group store-edge >/dev/null || { echo "FAIL: no group store-edge"; return 1; }
    [ "$(id -gn store-edge)" = store-edge ] || { echo "FAIL: primary group is $(id -gn store-edge)"; return 1; }
    if getent group dialout >/dev/null; then
        id -nG store-edge | tr ' ' '\n' | grep -qx dialout || { echo "FAIL: store-edge is not in dialout"; return 1; }
    fi
    [ "$home_existed" = yes ] || [ ! -e /var/lib/store-edge ] || { echo "FAIL: postinst created /var/lib/store-edge"; return 1; }
    [ "$(stat -c '%U:%G %a' /etc/store-edge)" = "root:store-edge 750" ] ||
        { echo "FAIL: /etc/store-edge is $(stat -c '%U:%G %a' /etc/store-edge)"; return 1; }
    [ -L /etc/systemd/system/multi-user.target.wants/store-edge.service ] ||
        { echo "FAIL: postinst did not enable store-edge.service"; return 1; }
    echo "ok   postinst configure: $pw, groups: $(id -nG store-edge), /etc/store-edge root:store-edge 750, enabled"
    DPKG_MAINTSCRIPT_NAME=postinst sh "$ctl/postinst" configure 0.0.0 || { echo "FAIL: postinst configure (upgrade) exited $?"; return 1; }
    [ "$(grep -c '^store-edge:' /etc/passwd)" = 1 ] || { echo "FAIL: second postinst duplicated the user"; return 1; }
    echo "ok   postinst configure again (upgrade): no change"
    DPKG_MAINTSCRIPT_NAME=prerm sh "$ctl/prerm" remove || { echo "FAIL: prerm remove exited $?"; return 1; }
    DPKG_MAINTSCRIPT_NAME=postrm sh "$ctl/postrm" remove || { echo "FAIL: postrm remove exited $?"; return 1; }
    DPKG_MAINTSCRIPT_NAME=postrm sh "$ctl/postrm" purge || { echo "FAIL: postrm purge exited $?"; return 1; }
    [ ! -e /etc/systemd/system/multi-user.target.wants/store-edge.service ] ||
        { echo "FAIL: enablement link left after purge"; return 1; }
    [ ! -e /etc/systemd/system/store-edge.service ] || { echo "FAIL: mask left after purge"; return 1; }
    getent passwd store-edge >/dev/null || { echo "FAIL: purge removed the user (it must stay)"; return 1; }
    echo "ok   prerm remove, postrm remove, postrm purge: links gone, user kept"
}
if [ "$(id -u)" -ne 0 ]; then
    echo "skipped: needs root"
elif ! command -v unshare >/dev/null || ! unshare --mount --propagation private true 2>/dev/null; then
    echo "skipped: mount namespaces are not available here (unshare --mount)"
else
    mkdir -p "$work/ns"
    ns_out=$(unshare --mount --propagation private bash -c "$(declare -f ns_check); ns_check \"\$@\"" \
        ns_check "$work/ns" "$scratch" "$ctl" "$arch" 2>&1) && ns_rc=0 || ns_rc=$?
    printf '%s\n' "$ns_out"
    [ "$ns_rc" -eq 0 ] || fail "maintainer scripts (see above)"
fi

echo
if [ "$failures" -ne 0 ]; then
    echo "package check: $failures check(s) failed" >&2
    exit 1
fi
echo "package check: ok"
