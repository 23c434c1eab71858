#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the L1 host of the reboot suite (tests/reboot/): Debian's cloud
# kernel, a small initramfs that loads the virtio and NVDIMM modules and
# switches to a read-only ext4 root disk made with mke2fs -d.  The disk
# holds busybox, kexec-tools, ndctl and e2fsprogs from the Debian packages
# (scripts/install-deps.sh installs them), the patched QEMU and this
# project's binaries at their absolute paths on this machine (so paths
# compiled into them still hold), every shared library they load (ldd),
# the kernel and initramfs again under /boot for kexec, and
# tests/reboot/l1-init.sh as /sbin/l1-init.
#
#   scripts/build-l1-image.sh QEMU BUILDDIR [STOCK_QEMU]
#
# STOCK_QEMU (the blackout bench's baseline, bench/blackout.c, and the
# reboot suite's L2 VM without the hook, which cpr-pmem's exec: helper
# saves and loads) is shipped too, at its path, with its libraries and its
# x86 option ROMs; it is part of the cache key like every other input.
#
# Cached under $CPR_PMEM_CACHE/l1/<hash of every input file>/; a cached run
# costs the ldd calls and one sha256sum over the inputs (~1 s).  Prints
# three lines: kernel, initramfs, root disk image.
set -eu
export PATH="$PATH:/usr/sbin:/sbin"   # depmod, modprobe, mke2fs

[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 QEMU BUILDDIR [STOCK_QEMU]" >&2; exit 2; }
qemu=$(readlink -f "$1")
build=$(cd "$2" && pwd)
stock=
if [ $# -eq 3 ] && [ -n "$3" ]; then
    [ -x "$3" ] || { echo "build-l1-image.sh: $3 missing" >&2; exit 1; }
    stock=$3
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CPR_PMEM_CACHE:-/var/cache/cpr-pmem}
init_script=$root/tests/reboot/l1-init.sh

# What L1 runs, from the build directory.
built="backend/transport-pmem.so tools/cpr-pmem/cpr-pmem
       tools/host-update/cpr-host-update
       tests/reboot/reboot-l2 tests/reboot/pmem-probe
       tests/unit/test-format tests/unit/test-roundtrip
       tests/unit/test-image-refusals
       tests/unit/test-create
       tests/crash/test-crash"
# What it needs from the Debian packages (absolute paths on this machine).
tools="/bin/busybox /usr/sbin/kexec /usr/bin/ndctl /usr/sbin/mke2fs"
# Modules, each with its dependencies: virtio disk, ACPI NFIT, fs-dax pmem,
# e820 pmem (memmap=, no NVDIMM), device DAX.
modules="virtio_pci virtio_blk nfit nd_pmem nd_btt nd_e820 dax_pmem device_dax"

files="$qemu $stock"
for f in $built; do
    [ -f "$build/$f" ] || { echo "build-l1-image.sh: $build/$f missing" >&2; exit 1; }
    files="$files $build/$f"
done
for f in $tools; do
    [ -x "$f" ] || { echo "build-l1-image.sh: $f missing (scripts/install-deps.sh)" >&2; exit 1; }
    files="$files $f"
done
# The stock QEMU's data: it looks for kvmvapic.bin (optional) there.
data=
if [ -n "$stock" ] && [ -f /usr/share/qemu/kvmvapic.bin ]; then
    data=/usr/share/qemu/kvmvapic.bin
fi
# Shared libraries, the dynamic loader included; libpmem's own (libndctl,
# libdaxctl, ...) come with it.
libs=$(for f in $files; do ldd "$f" 2>/dev/null || :; done |
       awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
       sort -u)

# --- the kernel package the cloud metapackage depends on ---
kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
pkg=$(kernel_pkg)
if [ -z "$pkg" ]; then
    apt-get update -q >&2
    pkg=$(kernel_pkg)
    [ -n "$pkg" ] || { echo "build-l1-image.sh: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
fi

key=$( (echo "$pkg $modules"; sha256sum "$0" "$init_script";
        for f in $files $libs $data; do echo "$f"; done; sha256sum $files $libs $data) |
       sha256sum | cut -c1-16)
out=$cache/l1/$key
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ -s "$out/root.img" ]; then
    echo "$out/vmlinuz"; echo "$out/initrd.img"; echo "$out/root.img"
    exit 0
fi
echo "build-l1-image.sh: building $out" >&2

# The kernel package, unpacked once per version.
kdir=$cache/l1/kernel-$pkg
if [ ! -f "$kdir/.done" ]; then
    rm -rf "$kdir"
    mkdir -p "$kdir/deb"
    chmod 1777 "$kdir/deb"   # apt-get download runs as _apt
    (cd "$kdir/deb" && apt-get download -q "$pkg" >&2) || {
        apt-get update -q >&2
        (cd "$kdir/deb" && apt-get download -q "$pkg" >&2)
    }
    dpkg-deb -x "$kdir"/deb/"$pkg"_*.deb "$kdir/x"
    rm -rf "$kdir/deb"
    kver=$(ls "$kdir/x/lib/modules")
    depmod -b "$kdir/x" "$kver"
    touch "$kdir/.done"
fi
kver=$(ls "$kdir/x/lib/modules")

mkdir -p "$cache/l1"
work=$(mktemp -d "$cache/l1/tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- initramfs: busybox, the modules in load order, /init ---
ird=$work/initrd
mkdir -p "$ird/bin" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/newroot" "$ird/lib/modules"
cp /bin/busybox "$ird/bin/busybox"
for m in $modules; do
    modprobe -C /dev/null -d "$kdir/x" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' > "$work/order"
: > "$ird/modules"
while read -r ko; do
    cp "$ko" "$ird/lib/modules/"
    echo "/lib/modules/$(basename "$ko")" >> "$ird/modules"
done < "$work/order"
cat > "$ird/init" <<'EOF'
#!/bin/busybox sh
# L1's first userspace: load modules, mount the root disk, switch to it.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
# The agent line: the host times the boot from this line.
echo "@@init $(/bin/busybox cut -d' ' -f1 /proc/uptime)" > /dev/ttyS1
while read -r ko; do
    /bin/busybox insmod "$ko" || echo "l1: insmod $ko failed"
done < /modules
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do /bin/busybox usleep 50000; i=$((i + 1)); done
/bin/busybox mount -o ro /dev/vda /newroot || { echo "l1: no root disk"; exec /bin/busybox sh; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/l1-init
EOF
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet) | gzip -1 > "$work/initrd.img"

# --- root disk ---
r=$work/root
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/dev" "$r/proc" "$r/sys" \
         "$r/tmp" "$r/run" "$r/mnt/pmem" "$r/etc" "$r/boot"
for f in $files $libs $data; do
    mkdir -p "$r$(dirname "$f")"
    cp -L "$f" "$r$f"
done
# busybox applets where nothing else stands (mke2fs is mkfs.ext4 too).
for a in $(/bin/busybox --list); do
    [ -e "$r/bin/$a" ] || [ -e "$r/sbin/$a" ] || [ -e "$r/usr/bin/$a" ] ||
        [ -e "$r/usr/sbin/$a" ] || ln -s busybox "$r/bin/$a"
done
ln -sf mke2fs "$r/usr/sbin/mkfs.ext4"
cp "$init_script" "$r/sbin/l1-init"
chmod 755 "$r/sbin/l1-init"
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'root:x:0:' > "$r/etc/group"
cp "$kdir/x/boot/vmlinuz-$kver" "$r/boot/vmlinuz"
cp "$work/initrd.img" "$r/boot/initrd.img"
cp "$kdir/x/boot/vmlinuz-$kver" "$work/vmlinuz"
size=$(du -sm "$r" | cut -f1)
mke2fs -q -t ext4 -O ^has_journal -L l1root -d "$r" "$work/root.img" "$((size + size / 4 + 32))M" >&2

mkdir -p "$work/out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/root.img" "$work/out/"
rm -rf "$out"
mv "$work/out" "$out"
# Older images of this cache: only the newest few are worth keeping.
ls -dt "$cache"/l1/[0-9a-f]* 2>/dev/null | tail -n +4 | xargs -r rm -rf
echo "$out/vmlinuz"; echo "$out/initrd.img"; echo "$out/root.img"
