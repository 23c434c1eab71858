/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Text from an image (a record's QEMU version, a RAM block's name, a save
 * helper's message) is whatever the file holds: a terminal must not obey
 * it, and a JSON reader must get valid UTF-8.
 */
#include "clean-text.h"

#include <glib.h>

/* tool_clean -- see clean-text.h. */
char *tool_clean(const char *s)
{
    GString *o = g_string_new(NULL);

    for (const char *p = s ? s : ""; *p;) {
        gunichar c = g_utf8_get_char_validated(p, -1);

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(o, "\\x%02x", (unsigned char)*p++);
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            g_string_append_printf(o, "\\x%02x", (unsigned)c);
        } else if (c >= 0x80 && !g_unichar_isprint(c)) {
            g_string_append_printf(o, "\\u{%x}", (unsigned)c);
        } else {
            g_string_append_len(o, p, g_utf8_next_char(p) - p);
        }
        p = g_utf8_next_char(p);
    }
    return g_string_free(o, FALSE);
}
