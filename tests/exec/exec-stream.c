/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "exec-stream.h"

#include <string.h>

GString *exec_stream_vmdesc(gsize len)
{
    GString *j = g_string_new("{\"configuration\": {\"vmsd_name\": "
                              "\"configuration\", \"version\": 1}, "
                              "\"page_size\": 4096, \"devices\": [");

    for (guint i = 0; j->len + 80 < len || i == 0; i++) {
        g_string_append_printf(j, "%s{\"name\": \"dev%u\", \"instance_id\": "
                               "%u, \"vmsd_name\": \"dev\", \"version\": 1}",
                               i ? ", " : "", i, i);
    }
    g_string_append(j, "]}");
    return j;
}

void exec_stream_trailer(GByteArray *s, const char *json, gsize len)
{
    guint8 head[6] = { 0x00, 0x06, len >> 24, len >> 16, len >> 8, len };

    g_byte_array_append(s, head, sizeof(head));
    g_byte_array_append(s, (const guint8 *)json, len);
}

GByteArray *exec_stream_new(guint32 seed, gsize body_len, gsize vmdesc_len)
{
    static const guint8 header[] = { 'Q', 'E', 'V', 'M', 0, 0, 0, 3 };
    static const char *const salt[] = {
        "\x00\x06", "\x00\x06\x00\x00\x00\x02{}",
        "{\"page_size\": 4096, \"devices\": []}",
        "the quick brown fox jumps over the lazy dog ",
    };
    GRand *r = g_rand_new_with_seed(seed);
    GByteArray *s = g_byte_array_new();
    g_autoptr(GString) json = exec_stream_vmdesc(vmdesc_len);

    g_byte_array_append(s, header, sizeof(header));
    /* QEMU_VM_CONFIGURATION, then a body */
    g_byte_array_append(s, (const guint8 *)"\x07\x00\x00\x00\x03pc", 7);
    while (s->len < body_len) {
        guint kind = g_rand_int_range(r, 0, 8);

        if (kind < G_N_ELEMENTS(salt)) {
            gsize n = kind == 0 ? 2 : kind == 1 ? 8 : strlen(salt[kind]);

            g_byte_array_append(s, (const guint8 *)salt[kind], n);
        } else {
            guint8 b = g_rand_int(r);

            g_byte_array_append(s, &b, 1);
        }
    }
    exec_stream_trailer(s, json->str, json->len);
    g_rand_free(r);
    return s;
}
