#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Everything CI checks, from a fresh Debian 12 machine: install packages,
# build the patched QEMUs (10.2, the default, and the 10.0 backport;
# cached), the guest, the backend and the tests, then run the test suites
# (the integration suite against both QEMUs), the sanitizer build and
# checkpatch on both series.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

qemu=$(scripts/prepare.sh)
qemu_10_0=$(scripts/build-qemu.sh 10.0)

setup() {  # builddir, meson args...
    dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
    meson compile -C "$dir"
}

# meson test, counting results for the closing "N passed, N failed" line.
passed=0 failed=0 skipped=0
mtest() {  # builddir, meson test args...
    log=$1/meson-logs/cpr-summary.txt
    rc=0
    meson test -C "$@" >"$log" 2>&1 || rc=$?
    cat "$log"
    set -- $(awk '/^Ok:/ { o += $2 } /^(Fail|Timeout):/ { f += $2 }
                  /^Unexpected Pass:/ { f += $3 } /^Skipped:/ { s += $2 }
                  END { print o + 0, f + 0, s + 0 }' "$log")
    passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + $3))
    if [ $rc -ne 0 ]; then
        echo "$passed passed, $((failed > 0 ? failed : 1)) failed, $skipped skipped"
        exit 1
    fi
}

# Every suite but reboot, "exec" (stock QEMU through the exec: helper)
# and "install" (meson install, a third-party transport) included.
setup build -Dwerror=true -Dqemu="$qemu"
mtest build --print-errorlogs --num-processes 1 --no-suite reboot
# An L1 host VM with fs-dax goes down by kexec, reboot and crash
# (tests/reboot/; a few minutes, its first run builds the L1 image).
mtest build --print-errorlogs --suite reboot

# The same integration suite against the 10.0 backport; the install test
# there with another prefix than the default build's /usr/local.
setup build-10.0 -Dwerror=true -Dqemu="$qemu_10_0" --prefix=/opt/qemu-cpr-pmem
mtest build-10.0 --print-errorlogs --num-processes 1 --suite integration \
    --suite install

# "tool" includes the exec: helper's tests (tests/exec).
setup build-asan -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dqemu="$qemu"
mtest build-asan --print-errorlogs \
    --suite unit --suite crash --suite corrupt --suite tool

# libFuzzer over the image parser and reader, bounded (30 s); see README
# for the long run.
[ -f build-fuzz/build.ninja ] ||
    CC=clang meson setup build-fuzz -Dwerror=true -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-fuzz
mtest build-fuzz --print-errorlogs --suite fuzz --suite corrupt

scripts/checkpatch.sh "$(dirname "$qemu")/../qemu"
scripts/checkpatch.sh "$(dirname "$qemu_10_0")/../qemu"

echo "$passed passed, $failed failed, $skipped skipped"
