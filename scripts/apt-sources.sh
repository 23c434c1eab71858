#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Add the apt entries the build needs, derived from the machine's own
# Debian mirror so that no host name is written down here:
#   deb-src trixie            (QEMU 10.0 source package)
#   deb-src forky             (QEMU 10.2 source package)
#   deb     bookworm-backports (meson >= 1.5, python3-pycotap, stock QEMU 10.0)
# Rewrites an older file of this script's that lacks an entry.
set -eu

out=/etc/apt/sources.list.d/cpr-pmem.sources
[ -s "$out" ] && grep -q '^Suites: forky$' "$out" && exit 0

# First URI that serves the plain "bookworm" suite, from deb822 or one-line files.
uri=$(
    for f in /etc/apt/sources.list.d/*.sources; do
        [ "$f" = "$out" ] && continue
        [ -f "$f" ] && awk '
            /^$/ { if (u != "" && s) { print u; exit } u = ""; s = 0 }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") s = 1 }
            END { if (u != "" && s) print u }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && awk '$1 == "deb" && $3 == "bookworm" { print $2 }' "$f"
    done | sed -n 1p
)
uri=$(printf '%s\n' "$uri" | sed -n 1p)
if [ -z "$uri" ]; then
    echo "apt-sources.sh: no Debian bookworm entry found in /etc/apt" >&2
    exit 1
fi

cat > "$out" <<EOT
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $uri
Suites: forky
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
echo "apt-sources.sh: wrote $out"
