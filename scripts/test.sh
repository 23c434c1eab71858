#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Everything CI checks, from a fresh Debian 12 machine: install packages,
# build the patched QEMU (cached), the guest, the backend and the tests,
# then run the test suites, the sanitizer build and checkpatch.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
qemu=$(scripts/build-qemu.sh)
scripts/build-guest.sh >/dev/null

setup() {  # builddir, meson args...
    dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
    meson compile -C "$dir"
}

setup build -Dwerror=true -Dqemu="$qemu"
meson test -C build --print-errorlogs --num-processes 1

setup build-asan -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dqemu="$qemu"
meson test -C build-asan --print-errorlogs --suite unit --suite tool

scripts/checkpatch.sh "$(dirname "$qemu")/../qemu"
