#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run QEMU's own checkpatch.pl (from the QEMU tree given) on every patch
# of the series.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
qemu_src=$1
status=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    if perl "$qemu_src/scripts/checkpatch.pl" -q "$root/qemu-patches/$p"; then
        echo "checkpatch: $p: ok"
    else
        echo "checkpatch: $p: FAILED" >&2
        status=1
    fi
done < "$root/qemu-patches/series"
exit $status
