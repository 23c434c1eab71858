#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job on its embedded default: install and build what is missing
# (QEMU is cached), then run one cpr-reboot cycle of a real Linux guest
# through pmem: and, for comparison, through stock QEMU's file:.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

qemu=$(scripts/prepare.sh)

if [ -f build/build.ninja ]; then
    meson configure build -Dqemu="$qemu" >/dev/null
else
    meson setup build -Dqemu="$qemu" >/dev/null
fi
meson compile -C build >/dev/null

QEMU_TRANSPORT_PLUGIN_DIR=$root/build/backend \
    exec build/bench/demo/cpr-demo "$qemu" /usr/bin/qemu-system-x86_64
