#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build QEMU 10.0 from Debian's source package with qemu-patches/ applied
# and print the path of qemu-system-x86_64.  The build is cached in a
# directory keyed by the series, this script and the source version, and
# compiled through ccache, so only a changed series pays for a rebuild.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CPR_PMEM_CACHE:-/var/cache/cpr-pmem}
patches=$root/qemu-patches

"$root/scripts/install-deps.sh" >&2

# Debian's QEMU 10.0 source: "1:10.0.N+ds-..." from the trixie deb-src entry.
version=$(apt-cache showsrc qemu 2>/dev/null |
          awk '/^Version: 1:10\.0\./ { print $2 }' | sort -V | tail -n 1)
if [ -z "$version" ]; then
    "$root/scripts/apt-sources.sh" >&2
    apt-get update -q >&2
    version=$(apt-cache showsrc qemu |
              awk '/^Version: 1:10\.0\./ { print $2 }' | sort -V | tail -n 1)
fi
[ -n "$version" ] || { echo "build-qemu.sh: no QEMU 10.0 source package" >&2; exit 1; }
upstream=${version#1:}
upstream=${upstream%-*}

key=$( (echo "$version"; cat "$0" "$patches/series";
        sed 's|^|'"$patches"'/|' "$patches/series" | xargs cat) |
       sha256sum | cut -c1-16)
out=$cache/qemu-$key
bin=$out/build/qemu-system-x86_64
if [ -f "$out/.done" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

# Pristine source, with Debian's own patches applied by dpkg-source.
src=$cache/src/qemu-$upstream
if [ ! -d "$src" ]; then
    mkdir -p "$cache/src"
    (cd "$cache/src" && apt-get source -q "qemu=$version") >&2
fi

echo "build-qemu.sh: building $out (a cold build takes ~10 minutes)" >&2
rm -rf "$out"
mkdir -p "$out"
cp -a "$src" "$out/qemu"
rm -rf "$out/qemu/.pc"
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    patch -d "$out/qemu" -p1 -s --forward < "$patches/$p" >&2
done < "$patches/series"

# The ABI header exists twice: the series carries QEMU's copy.
cmp "$root/include/qemu/transport-plugin.h" \
    "$out/qemu/include/qemu/transport-plugin.h" >&2

export CCACHE_DIR="$cache/ccache" CCACHE_BASEDIR="$out" CCACHE_NOHASHDIR=1
mkdir -p "$out/build"
cd "$out/build"
../qemu/configure --target-list=x86_64-softmmu \
    --without-default-features --enable-kvm --enable-tcg \
    --disable-docs --disable-install-blobs --disable-user \
    --python=/usr/bin/python3 --cc="ccache gcc" \
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
    >&2
ninja qemu-system-x86_64 >&2

# Run from the build tree, QEMU looks for firmware under qemu-bundle/
# only: point it at the installed SeaBIOS, iPXE and option ROMs.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    mkdir -p "qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "qemu-bundle$d"
done
touch "$out/.done"
echo "$bin"
