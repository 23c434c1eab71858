#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# include/qemu/transport-plugin.h documents every call in kernel-doc form,
# as include/qemu/qemu-plugin.h does: QEMU's scripts/kernel-doc reads it
# without a warning, and every call of the ops table and the init
# function has a "Context:" (which thread, which lock) section.  The copy
# that the first patch of QEMU_SRC's hook series adds to QEMU is the same
# file.
#
#   check-abi-doc.sh QEMU_SRC HEADER QEMU_PATCHES_DIR
set -eu

header=$2
# QEMU 10.2 has the Python kernel-doc, 10.0 the Perl one.
if [ -f "$1/scripts/kernel-doc.py" ]; then
    kdoc="python3 $1/scripts/kernel-doc.py"
else
    kdoc="perl $1/scripts/kernel-doc"
fi
# The series for QEMU_SRC's major.minor, e.g. QEMU_PATCHES_DIR/10.2/hook.
mm=$(cut -d. -f1-2 "$1/VERSION")
hook=$3/$mm/hook
patch1=$hook/$(sed -n 1p "$hook/series")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

echo "1..3"

if $kdoc -none -Werror "$header" 2>"$tmp/warnings"; then
    echo "ok 1 kernel-doc reads the header without warnings"
else
    sed 's/^/# /' "$tmp/warnings"
    echo "not ok 1 kernel-doc reads the header without warnings"
    fail=1
fi

# One "Context:" per documented call, in kernel-doc's own rendering.
$kdoc -rst "$header" >"$tmp/rst" 2>/dev/null
missing=
for call in out_open out_writev out_pwritev out_commit out_abort out_close \
            in_open in_readv in_preadv in_close; do
    # (the Python kernel-doc indents the member list)
    awk -v m="\`\`$call\`\`" '
        { line = $0; sub(/^[ \t]+/, "", line) }
        line == m { on = 1; next }
        on && line ~ /^``/ { exit }
        on && line ~ /^\*\*Description\*\*/ { exit }
        on && /Context:/ { found = 1 }
        END { exit !found }' "$tmp/rst" || missing="$missing $call"
done
grep -q '^\.\. c:function:: .*qemu_transport_plugin_init' "$tmp/rst" &&
    awk '/c:function::.*qemu_transport_plugin_init/ { on = 1 }
         on && /^[ \t]*\*\*Context\*\*/ { found = 1 }
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
