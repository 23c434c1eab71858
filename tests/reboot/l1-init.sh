#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /sbin/l1-init of the reboot suite's L1 host (scripts/build-l1-image.sh):
# mount the fs-dax filesystem on the emulated NVDIMM (or on the memmap=
# range: the same namespace0.0, of an e820 region) at /mnt/pmem (making
# the fsdax namespace and the filesystem on the first boot only), then
# serve the host on the second serial port (/dev/ttyS1), one shell command
# per line: its output (stdout and stderr) comes back on the same line,
# then "@@rc STATUS".  The first line of every boot is "@@init UPTIME"
# (from the initramfs), then "@@ready ..." once /mnt/pmem is mounted.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=755 tmpfs /run
# A writable /tmp; what the image holds there (a build directory under
# /tmp, shipped at its path) stays visible through bind mounts.
mkdir /run/image-tmp
mount --bind /tmp /run/image-tmp
mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in /run/image-tmp/*; do
    [ -d "$d" ] || continue
    mkdir "/tmp/${d##*/}"
    mount --bind "$d" "/tmp/${d##*/}"
done

agent=/dev/ttyS1
stty -F $agent raw -echo 115200
exec 3<>$agent

say() { echo "$*" >&3; }

ns=/sys/bus/nd/devices/namespace0.0
i=0
while [ ! -e $ns/mode ] && [ $i -lt 200 ]; do usleep 50000; i=$((i + 1)); done
mode=$(cat $ns/mode 2>/dev/null)
fresh=
# No holder: no fsdax info block yet.  The NVDIMM's namespace reads "raw"
# then; an e820 one "memory" (its pages are mapped), but has none either.
if [ -z "$(cat $ns/holder 2>/dev/null)" ]; then
    # First boot: raw mode cannot do DAX.  The fsdax namespace's info
    # block is on the media: later boots find it again.
    t0=$(cut -d' ' -f1 /proc/uptime)
    ndctl create-namespace --force --mode=fsdax --reconfig=namespace0.0 >/dev/null
    i=0
    while [ ! -b /dev/pmem0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
    # 4 KiB blocks: mkfs would pick 1 KiB on a small device, and no DAX.
    mkfs.ext4 -q -F -b 4096 /dev/pmem0
    fresh=" made-fs-in=$(awk -v t0="$t0" '{ printf "%.2f", $1 - t0 }' /proc/uptime)s"
fi
# The block device comes a moment after the namespace (nd_pmem's probe).
i=0
while [ ! -b /dev/pmem0 ] && [ $i -lt 200 ]; do usleep 50000; i=$((i + 1)); done
if ! mount -o dax /dev/pmem0 /mnt/pmem; then
    say "@@fail mount -o dax /dev/pmem0 (namespace mode: $mode)"
    exec sh <&3 >&3 2>&3
fi
# The second NVDIMM (none with memmap=): device DAX, /dev/dax1.0, made on
# the first boot like the fsdax namespace.
ns1=/sys/bus/nd/devices/namespace1.0
if [ -e $ns1 ] && [ -z "$(cat $ns1/holder 2>/dev/null)" ]; then
    ndctl create-namespace --force --mode=devdax --reconfig=namespace1.0 >/dev/null
    fresh="$fresh made-devdax"
fi
if [ -e $ns1 ]; then
    i=0
    while [ ! -c /dev/dax1.0 ] && [ $i -lt 200 ]; do usleep 50000; i=$((i + 1)); done
    [ -c /dev/dax1.0 ] || say "@@fail no /dev/dax1.0 (namespace1.0 holder: $(cat $ns1/holder))"
fi
dax=$(awk '$2 == "/mnt/pmem" { print $4 }' /proc/mounts)
# Which pmem: the nd bus's provider (ACPI.NFIT: the NVDIMM; e820: memmap=).
provider=$(cat /sys/bus/nd/devices/ndbus0/provider 2>/dev/null)
memmap=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^memmap=/ memmap=/p')
devdax=$( [ -c /dev/dax1.0 ] && echo " devdax=/dev/dax1.0")
say "@@ready boot=$(cat /proc/sys/kernel/random/boot_id) uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r) mount=$dax provider=$provider$memmap$devdax$fresh"

# The agent must not be PID 1: orphans (restored VMs, background suites)
# are PID 1's children, and busybox's read, interrupted by their SIGCHLD,
# starts the line again without the bytes it had read.  PID 1 only reaps.
agent() {
    while read -r line <&3; do
        sh -c "$line" </dev/null >&3 2>&3
        say "@@rc $?"
    done
    say "@@fail agent: end of input"
}
agent &
while :; do
    wait
    kill -0 $! 2>/dev/null || break
done
exec sleep 2147483647
