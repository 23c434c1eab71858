#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-qemu.sh [10.2|10.0]: build QEMU from Debian's source package with
# qemu-patches/VERSION/hook and qemu-patches/VERSION/perf applied, and
# print the path of qemu-system-x86_64.  10.2 (the default) is what the
# demo, the tests and the bench run; 10.0 is the backport for Debian
# stable's QEMU.
#
# libpmem is on, as in Debian's QEMU: memory-backend-file,pmem=on works.
# Besides QEMU, the build has the hook series' qtest and its test
# transports (tests/qtest/migration-transport-test, transport-qtest-file.so
# and transport-qtest-seek.so) next to the binary.  Each build is cached
# in a directory keyed by the version, the source package, both series
# and this script, and compiled through ccache, so only a changed series
# pays for a rebuild, and builds of both versions coexist.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CPR_PMEM_CACHE:-/var/cache/cpr-pmem}
series=${1:-10.2}
case $series in
10.2|10.0) ;;
*) echo "usage: build-qemu.sh [10.2|10.0]" >&2; exit 2 ;;
esac
patches=$root/qemu-patches/$series

"$root/scripts/install-deps.sh" >&2

# Debian's source: "VERSION DIR", unpacked once under $cache/src.
set -- $("$root/scripts/fetch-qemu-source.sh" "$series" "$cache/src")
version=$1 src=$2

key=$( (echo "$series $version"; cat "$0" "$root/scripts/fetch-qemu-source.sh"
        for s in hook perf; do
            echo "$s"; cat "$patches/$s/series"
            sed 's|^|'"$patches/$s"'/|' "$patches/$s/series" | xargs cat
        done) | sha256sum | cut -c1-16)
out=$cache/qemu-$series-$key
bin=$out/build/qemu-system-x86_64
if [ -f "$out/.done" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi

echo "build-qemu.sh: building QEMU $series in $out (a cold build takes" \
     "~10 minutes)" >&2
start=$(date +%s)
rm -rf "$out"
mkdir -p "$out"
cp -a "$src" "$out/qemu"
rm -rf "$out/qemu/.pc"
for s in hook perf; do
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        patch -d "$out/qemu" -p1 -s --forward < "$patches/$s/$p" >&2
    done < "$patches/$s/series"
done

# The ABI header exists twice: the series carries QEMU's copy.
cmp "$root/include/qemu/transport-plugin.h" \
    "$out/qemu/include/qemu/transport-plugin.h" >&2

export CCACHE_DIR="$cache/ccache" CCACHE_BASEDIR="$out" CCACHE_NOHASHDIR=1
mkdir -p "$out/build"
cd "$out/build"
../qemu/configure --target-list=x86_64-softmmu \
    --without-default-features --enable-kvm --enable-tcg \
    --enable-libpmem --enable-transport-plugins \
    --disable-docs --disable-install-blobs --disable-user \
    --enable-werror \
    --python=/usr/bin/python3 --cc="ccache gcc" \
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
    >&2
ninja qemu-system-x86_64 tests/qtest/migration-transport-test \
    tests/qtest/transport-qtest-file.so tests/qtest/transport-qtest-seek.so >&2

# Run from the build tree, QEMU looks for firmware under qemu-bundle/
# only: point it at the installed SeaBIOS, iPXE and option ROMs.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    mkdir -p "qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "qemu-bundle$d"
done
touch "$out/.done"
echo "build-qemu.sh: QEMU $series built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
