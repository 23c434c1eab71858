#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the test guest: Debian's cloud kernel plus a busybox initramfs whose
# /init prints "tick N" on the serial console forever.  The counter lives
# only in guest RAM, so a restored guest that keeps counting proves that RAM
# and CPU state survived the cpr-reboot cycle.
#
# Outputs are cached under $CPR_PMEM_CACHE/guest/<hash of this script>/;
# a cached run costs one sha256sum.  Prints two lines: kernel path, initrd path.
set -eu

cache=${CPR_PMEM_CACHE:-/var/cache/cpr-pmem}
key=$(sha256sum "$0" | cut -c1-16)
out=$cache/guest/$key

if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.gz" ]; then
    echo "$out/vmlinuz"
    echo "$out/initrd.gz"
    exit 0
fi

mkdir -p "$cache/guest"
work=$(mktemp -d "$cache/guest/tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- kernel: the versioned package the cloud metapackage depends on ---
kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
# apt-get download runs as user _apt when started by root: let it write.
chmod 755 "$work"
mkdir -m 1777 "$work/deb"
pkg=$(kernel_pkg)
# Missing or stale package lists: refresh once and try again.
if [ -z "$pkg" ] || ! (cd "$work/deb" && apt-get download -q "$pkg" >&2); then
    apt-get update -q >&2
    pkg=$(kernel_pkg)
    [ -n "$pkg" ] || { echo "build-guest.sh: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
    (cd "$work/deb" && apt-get download -q "$pkg" >&2)
fi
dpkg-deb -x "$work"/deb/"$pkg"_*.deb "$work/kernel"
cp "$(ls "$work"/kernel/boot/vmlinuz-* | head -n 1)" "$work/vmlinuz"

# --- initramfs: static busybox and a ticking /init ---
root=$work/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cat > "$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
n=0
while :; do
    n=$((n + 1))
    echo "tick $n"
    usleep 150000
done
EOF
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -9 > "$work/initrd.gz"

# Publish atomically so a concurrent or interrupted run never sees half a guest.
mkdir -p "$work/out"
mv "$work/vmlinuz" "$work/initrd.gz" "$work/out/"
rm -rf "$out"
mv "$work/out" "$out"

echo "$out/vmlinuz"
echo "$out/initrd.gz"
