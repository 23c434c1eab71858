#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# checkpatch.sh QEMU_SRC: run QEMU_SRC's own checkpatch.pl on every patch
# of the hook and the performance series for QEMU_SRC's version
# (qemu-patches/MAJOR.MINOR/{hook,perf}; the cover letters are not
# patches).  Warnings count as failures.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
qemu_src=$1
mm=$(cut -d. -f1-2 "$qemu_src/VERSION")
status=0
for s in hook perf; do
    dir=$root/qemu-patches/$mm/$s
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        if out=$(perl "$qemu_src/scripts/checkpatch.pl" -q "$dir/$p" 2>&1) &&
           [ -z "$out" ]; then
            echo "checkpatch: $mm/$s/$p: ok"
        else
            printf '%s\n' "$out" >&2
            echo "checkpatch: $mm/$s/$p: FAILED" >&2
            status=1
        fi
    done < "$dir/series"
done
exit $status
