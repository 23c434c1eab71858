#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install every Debian package the build, the tests and the benchmarks use.
# Idempotent: a second run with everything present costs one dpkg query.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

pkgs="build-essential pkg-config ninja-build ccache dpkg-dev git
      libglib2.0-dev libpmem-dev libjson-glib-dev libxxhash-dev
      libfdt-dev zlib1g-dev python3-venv python3-setuptools
      seabios ipxe-qemu busybox-static cpio e2fsprogs patch
      clang libclang-rt-14-dev gnuplot-nox
      kexec-tools ndctl kmod systemtap-sdt-dev bpftrace"
bpo_pkgs="meson python3-pycotap qemu-system-x86 qemu-system-data qemu-utils"

missing=""
for p in $pkgs $bpo_pkgs; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
        missing="$missing $p"
done
# The bookworm meson is too old for QEMU 10.0: insist on the backport.
if ! meson --version 2>/dev/null | awk -F. '{ exit !($1 > 1 || ($1 == 1 && $2 >= 5)) }'; then
    missing="$missing meson"
fi
[ -z "$missing" ] && exit 0

"$here/apt-sources.sh"
export DEBIAN_FRONTEND=noninteractive
# kexec-tools is for the reboot suite's L1 host (scripts/build-l1-image.sh
# copies it there): it must not take over this machine's own reboots.
echo 'kexec-tools kexec-tools/load_kexec boolean false' | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends $pkgs
apt-get install -y -q --no-install-recommends -t bookworm-backports $bpo_pkgs
