/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The report section of cpr-abi-micro (the program: cpr-abi-micro.c).
 * The transport's own cost, without QEMU: cpr-abi-micro saves a ~300 KB
 * stream through the ABI and reopens it, once per medium.
 */
#include "bench.h"

#include <glib/gstdio.h>
#include <math.h>

#define STREAM_BYTES "307200"
#define REPS         "200"

gboolean bench_micro_abi(Report *r, GError **errp)
{
    static const char *const keys[] = {
        "out_open_us", "out_writev_us", "out_commit_us", "transport_share_us",
        "out_close_us", "in_open_us",
    };

    g_string_append(r->md,
        "\n### Transport ABI microbenchmark (300 KiB stream in QEMU-shaped "
        "iovecs: 4 KiB pages + 8-byte headers, 64 iovecs per writev; median "
        "of " REPS ")\n\n"
        "| medium | out_open µs | out_writev µs | out_commit µs "
        "| writev+commit µs (share of the pause) | out_close µs "
        "| in_open (validation) µs |\n|---|---|---|---|---|---|---|\n");
    json_builder_set_member_name(r->json, "abi_micro");
    json_builder_begin_array(r->json);
    for (MediumId m = 0; m < N_MEDIA; m++) {
        g_autofree char *img = g_strdup_printf("%s/micro-%d.img",
                                               bench_medium_dir(m), m);
        const char *args[] = { "save", r->opts->plugin, img, STREAM_BYTES,
                               REPS, NULL };
        g_autoptr(GHashTable) kv = NULL;

        bench_set_medium_env(m);
        kv = bench_micro(r->opts, args, errp);
        g_unlink(img);
        if (!kv) {
            json_builder_end_array(r->json);
            return FALSE;
        }
        g_string_append_printf(r->md, "| %s", bench_media[m].name);
        json_builder_begin_object(r->json);
        json_builder_set_member_name(r->json, "medium");
        json_builder_add_string_value(r->json, bench_media[m].name);
        for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
            double v = bench_micro_get(kv, keys[k]);

            g_string_append_printf(r->md, " | %.1f", v);
            json_builder_set_member_name(r->json, keys[k]);
            json_builder_add_double_value(r->json, isnan(v) ? -1 : v);
        }
        json_builder_end_object(r->json);
        g_string_append(r->md, " |\n");
    }
    json_builder_end_array(r->json);
    return TRUE;
}
