#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What the demo and the tests both need first: the Debian packages, the
# patched QEMU (cached) and the guest.  Prints the patched QEMU's path;
# everything else goes to stderr.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" >&2
qemu=$("$root/scripts/build-qemu.sh")
"$root/scripts/build-guest.sh" >/dev/null
echo "$qemu"
