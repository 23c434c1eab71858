#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# fetch-qemu-source.sh SERIES DESTDIR: unpack Debian's QEMU source for
# SERIES (10.0 or 10.2), with Debian's patches applied by dpkg-source, into
# DESTDIR/qemu-UPSTREAM and print "VERSION DIR" (VERSION is the Debian one).
#
#   10.0: the newest 1:10.0.x that a deb-src trixie entry lists
#   10.2: the newest 1:10.2.x that a deb-src forky entry lists; once forky
#         has moved past 10.2 its index no longer names one, but the pool
#         still serves 1:10.2.2+ds-1: it is then fetched by apt's own
#         downloader from the same Debian mirror, its .dsc checked against
#         the hash below and the tarballs against the .dsc.
# Progress and errors go to stderr.
set -eu

series=$1 dest=$2
root=$(cd "$(dirname "$0")/.." && pwd)

pinned_10_2=1:10.2.2+ds-1
pinned_10_2_dsc_sha256=f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd

listed() {  # newest "1:SERIES.N..." version of qemu the deb-src entries list
    apt-cache showsrc qemu 2>/dev/null |
        awk -v s="1:$series." 'index($0, "Version: " s) == 1 { print $2 }' |
        sort -V | tail -n 1
}

case $series in
10.0) suite=trixie ;;
10.2) suite=forky ;;
*) echo "fetch-qemu-source.sh: unknown series '$series'" >&2; exit 2 ;;
esac
version=$(listed)
if [ -z "$version" ]; then
    # Update the index only if the entry is new or was never fetched.
    wrote=$("$root/scripts/apt-sources.sh")
    if [ -n "$wrote" ] ||
       ! ls /var/lib/apt/lists/*_dists_${suite}_main_source_Sources* \
            >/dev/null 2>&1; then
        apt-get update -q >&2
    fi
    version=$(listed)
fi
pinned=""
if [ -z "$version" ]; then
    if [ "$series" != 10.2 ]; then
        echo "fetch-qemu-source.sh: no QEMU $series source package" >&2
        exit 1
    fi
    version=$pinned_10_2 pinned=$pinned_10_2_dsc_sha256
fi
upstream=${version#*:}
upstream=${upstream%-*}
dir=$dest/qemu-$upstream
if [ -d "$dir" ]; then
    echo "$version $dir"
    exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"    # apt's downloader runs as _apt
if [ -z "$pinned" ]; then
    (cd "$tmp" && apt-get source -q "qemu=$version") >&2
else
    # The pool of the mirror that serves the deb-src entries.
    mirror=$(awk '/^URIs:/ { print $2; exit }' \
                 /etc/apt/sources.list.d/cpr-pmem.sources)
    pool=$mirror/pool/main/q/qemu
    dsc=qemu_${version#*:}.dsc
    echo "fetch-qemu-source.sh: $version is not in the index any more;" \
         "fetching it from the pool" >&2
    /usr/lib/apt/apt-helper download-file "$pool/$dsc" "$tmp/$dsc" \
        "SHA256:$pinned" >&2
    awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 }
         on && NF == 3 { print $1, $3 }' "$tmp/$dsc" |
    while read -r sum file; do
        /usr/lib/apt/apt-helper download-file "$pool/$file" "$tmp/$file" \
            "SHA256:$sum" >&2
    done
    (cd "$tmp" && dpkg-source -x "$dsc" "qemu-$upstream") >&2
fi
rm -rf "$tmp/qemu-$upstream/.pc"
mv "$tmp/qemu-$upstream" "$dir"
echo "$version $dir"
