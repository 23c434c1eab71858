#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# include/qemu/transport-plugin.h documents every call in kernel-doc form,
# as include/qemu/qemu-plugin.h does: QEMU's scripts/kernel-doc reads it
# without a warning, and every call of the ops table and the init
# function has a "Context:" (which thread, which lock) section.  The copy
# that patch 1 adds to QEMU is the same file.
#
#   check-abi-doc.sh QEMU_SRC HEADER PATCH1
set -eu

kdoc=$1/scripts/kernel-doc
header=$2
patch1=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

echo "1..3"

if perl "$kdoc" -none -Werror "$header" 2>"$tmp/warnings"; then
    echo "ok 1 kernel-doc reads the header without warnings"
else
    sed 's/^/# /' "$tmp/warnings"
    echo "not ok 1 kernel-doc reads the header without warnings"
    fail=1
fi

# One "Context:" per documented call, in kernel-doc's own rendering.
perl "$kdoc" -rst "$header" >"$tmp/rst" 2>/dev/null
missing=
for call in out_open out_writev out_pwritev out_commit out_abort out_close \
            in_open in_readv in_preadv in_close; do
    awk -v m="\`\`$call\`\`" '
        $0 == m { on = 1; next }
        on && /^``/ { exit }
        on && /^\*\*Description\*\*/ { exit }
        on && /Context:/ { found = 1 }
        END { exit !found }' "$tmp/rst" || missing="$missing $call"
done
grep -q '^\.\. c:function:: .*qemu_transport_plugin_init' "$tmp/rst" &&
    awk '/c:function::.*qemu_transport_plugin_init/ { on = 1 }
         on && /^\*\*Context\*\*/ { found = 1 }
         END { exit !found }' "$tmp/rst" ||
    missing="$missing qemu_transport_plugin_init"
if [ -z "$missing" ]; then
    echo "ok 2 every call documents its context"
else
    echo "not ok 2 every call documents its context # missing:$missing"
    fail=1
fi

# The header as patch 1 creates it ("+" lines of its new-file hunk).
awk '/^\+\+\+ b\/include\/qemu\/transport-plugin.h/ { on = 1; next }
     on && /^diff --git/ { exit }
     on && /^@@/ { next }
     on && /^\+/ { print substr($0, 2) }' "$patch1" >"$tmp/copy"
if cmp -s "$header" "$tmp/copy"; then
    echo "ok 3 patch 1 carries the same header"
else
    echo "not ok 3 patch 1 carries the same header"
    fail=1
fi
exit $fail
