/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Full-RAM save throughput: no x-ignore-shared, anonymous guest RAM filled
 * with a non-zero byte through qtest's memset (QEMU's zero-page detection
 * must not shortcut it), saved to /dev/shm; next to memcpy bandwidth
 * measured in this process in the same run.  max-bandwidth is raised to
 * 1 TiB/s for every transport (cpr_setup); QEMU's default would cap the
 * save at 128 MiB/s.
 */
#include "bench.h"
#include "guest-kinds.h"
#include "cpr-cycle.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#define CHUNK   (64ULL << 20)
#define MIB     (1ULL << 20)
#define GIB     (1ULL << 30)

/* pmem: twice: into a new image, and into one made by "cpr-pmem create". */
typedef struct {
    TransportId t;
    gboolean created;
} FrRow;

static const FrRow fr_rows[] = {
    { T_PMEM, FALSE }, { T_PMEM, TRUE }, { T_FILE_PATCHED, FALSE },
    { T_FILE_STOCK, FALSE },
};

static const char *row_name(const FrRow *row)
{
    return row->created ? "pmem (created image)" : bench_transports[row->t].name;
}

/* What an operator does once per VM: room for two saves, faulted in. */
static gboolean create_image(const char *img, guint gib, GError **errp)
{
    g_autofree char *size = g_strdup_printf("--size=%uM", gib * 1024 * 5 / 2 + 64);
    const char *argv[] = { BENCH_CPR_PMEM, "create", size, img, NULL };
    g_autofree char *err = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, errp)) {
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "cpr-pmem create %s failed: %s", img, err);
        return FALSE;
    }
    return TRUE;
}

/* Best-of-5 GB/s copying 512 MiB (larger than any cache here). */
static double memcpy_gbs(void)
{
    gsize len = 512 * MIB;
    char *a = g_malloc(len), *b = g_malloc(len);
    double best = 0;

    memset(a, 1, len);
    memset(b, 2, len);
    for (int i = 0; i < 5; i++) {
        gint64 t0 = g_get_monotonic_time();

        memcpy(b, a, len);
        best = MAX(best, len / ((g_get_monotonic_time() - t0) * 1e3));
        a[i] = b[len - 1 - i];   /* keep the copy observable */
    }
    g_free(a);
    g_free(b);
    return best;
}

/* q35 puts RAM above 2 GiB (when over 2.75 GiB) at 4 GiB. */
static gboolean fill_ram(Qtest *qt, guint gib, GError **errp)
{
    guint64 total = (guint64)gib * GIB;
    guint64 low = total >= 0xb0000000ULL ? 0x80000000ULL : total;

    for (guint64 a = MIB; a < low; a += CHUNK) {
        if (!qtest_memset(qt, a, MIN(CHUNK, low - a), 0x5a, errp)) {
            return FALSE;
        }
    }
    for (guint64 a = 0; a < total - low; a += CHUNK) {
        if (!qtest_memset(qt, 4 * GIB + a, MIN(CHUNK, total - low - a), 0x5a,
                          errp)) {
            return FALSE;
        }
    }
    return TRUE;
}

typedef struct {
    double gbs, pause_ms, bytes, val_ms;
} FullSave;

/* Stream size and, for pmem:, validation time of the image just saved. */
static gboolean measure(const BenchOpts *o, TransportId t, const char *img,
                        CprSample *s, FullSave *out, GError **errp)
{
    out->val_ms = NAN;
    if (t == T_PMEM) {
        const char *margs[] = { "validate", o->plugin, img, NULL };
        g_autoptr(GHashTable) kv = bench_micro(o, margs, errp);

        if (!kv) {
            return FALSE;
        }
        s->stream_bytes = bench_micro_get(kv, "stream_bytes");
        out->val_ms = bench_micro_get(kv, "in_open_us") / 1e3;
    } else {
        GStatBuf st;

        if (g_stat(img, &st) == 0) {
            s->stream_bytes = st.st_size;
        }
        s->pause_us += bench_fdatasync_us(img);
    }
    out->pause_ms = s->pause_us / 1e3;
    out->bytes = s->stream_bytes;
    out->gbs = s->stream_bytes / (s->pause_us * 1e3);
    return TRUE;
}

/*
 * Three reboots of one VM with one image, as in production: each save
 * after the first is made by a QEMU restored from the previous one, whose
 * guest then ran for a while (SETTLE_S per GiB here, hours there).  The
 * first save into a new file pays for allocating its pages; the second
 * goes to pmem's second payload slot (new room, unless the restore made
 * it meanwhile); the third reuses the first one's pages.
 */
#define SAVES 3
#define SETTLE_S 4
static const char *const save_names[SAVES] = {
    "1st", "2nd", "3rd (steady)",
};

static gboolean saves(Report *r, const FrRow *row, guint gib,
                      FullSave out[SAVES], GError **errp)
{
    const BenchOpts *o = r->opts;
    TransportId t = row->t;
    g_autofree char *ram = g_strdup_printf("%uG", gib);
    GuestSpec spec = { GUEST_QTEST, ram, FALSE, FALSE };
    CprSetup setup = { .ignore_shared = FALSE };
    g_autofree char *dir = g_strdup_printf("%s/fullram", bench_shm_base);
    g_autofree char *img = g_strdup_printf("%s/fullram.img", bench_shm_base);
    g_autofree char *uri = bench_uri(t, img);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) vm = NULL;
    QemuProcOpts opts;
    gboolean ok = FALSE;

    g_mkdir_with_parents(dir, 0700);
    g_unlink(img);
    if (row->created && !create_image(img, gib, errp)) {
        return FALSE;
    }
    bench_set_medium_env(MEDIUM_SHM_FORCE);
    args = guest_kind_args(&spec, bench_qemu_for(o, t), dir, errp);
    if (!args) {
        return FALSE;
    }
    opts = (QemuProcOpts){ .binary = bench_qemu_for(o, t),
                           .args = (const char *const *)args, .dir = dir,
                           .name = "vm", .qtest = TRUE, .timeout_ms = 60000 };
    vm = qemu_proc_start(&opts, errp);
    if (!vm || !fill_ram(qemu_proc_qtest(vm), gib, errp)) {
        goto out;
    }
    for (int i = 0; i < SAVES; i++) {
        CprSample s;

        cpr_sample_clear(&s);
        if (i) {
            CprSample rs;

            if (!cpr_save_quit(vm, &s, errp)) {
                goto out;
            }
            g_clear_pointer(&vm, qemu_proc_free);
            vm = cpr_restore(&opts, &setup, uri, &rs, errp);
            if (!vm) {
                goto out;
            }
            g_usleep(SETTLE_S * gib * G_USEC_PER_SEC);
        }
        if (!cpr_save_start(vm, &setup, uri, errp) ||
            !cpr_save_finish(vm, &s, NULL, NULL, errp) ||
            !measure(o, t, img, &s, &out[i], errp)) {
            goto out;
        }
    }
    ok = TRUE;
out:
    g_clear_pointer(&vm, qemu_proc_free);
    g_unlink(img);
    return ok;
}

gboolean bench_full_ram(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    double mc = memcpy_gbs();
    FILE *csv = bench_csv_open(o, "full-ram.csv",
                               "gib,transport,save,pause_ms,stream_bytes,gbs,memcpy_gbs");
    gboolean ok = FALSE;

    g_string_append_printf(r->md,
        "\n### Full-RAM save to /dev/shm (no x-ignore-shared; RAM filled "
        "with 0x5a via qtest memset; max-bandwidth raised to 1 TiB/s for "
        "every transport; file: rows include an fdatasync).  Each row is three "
        "reboots: every save after the first is made by a QEMU restored from "
        "the previous save, %d s per GiB after its restore.  Each row starts "
        "without an image, except pmem (created image): `cpr-pmem create "
        "--size` 2.5 x RAM + 64 MiB first.\n\n"
        "memcpy bandwidth, same run: **%.2f GB/s** (best of 5, 512 MiB)\n\n"
        "| RAM | transport | save | pause ms | stream MiB | GB/s | vs memcpy "
        "| in_open ms |\n|---|---|---|---|---|---|---|---|\n", SETTLE_S, mc);
    json_builder_set_member_name(r->json, "memcpy_gbs");
    json_builder_add_double_value(r->json, mc);
    json_builder_set_member_name(r->json, "full_ram");
    json_builder_begin_array(r->json);
    for (guint k = 0; k < o->full_ram_gib->len; k++) {
        guint gib = g_array_index(o->full_ram_gib, guint, k);

        for (guint ri = 0; ri < G_N_ELEMENTS(fr_rows); ri++) {
            const FrRow *row = &fr_rows[ri];
            TransportId t = row->t;
            FullSave fs[SAVES];

            if (bench_transports[t].patched_qemu && !*o->qemu) {
                continue;
            }
            fprintf(stderr, "  full-ram: %u GiB %s\n", gib, row_name(row));
            if (!saves(r, row, gib, fs, errp)) {
                goto out;
            }
            for (int i = 0; i < SAVES; i++) {
                const char *when = save_names[i];

                g_string_append_printf(r->md,
                    "| %u GiB | %s | %s | %.0f | %.0f | %.2f | %.0f %% | %.1f |\n",
                    gib, row_name(row), when, fs[i].pause_ms,
                    fs[i].bytes / MIB, fs[i].gbs, 100 * fs[i].gbs / mc,
                    fs[i].val_ms);
                if (csv) {
                    fprintf(csv, "%u,%s,%s,%.1f,%.0f,%.3f,%.3f\n", gib,
                            row_name(row), when, fs[i].pause_ms,
                            fs[i].bytes, fs[i].gbs, mc);
                }
                json_builder_begin_object(r->json);
                json_builder_set_member_name(r->json, "gib");
                json_builder_add_int_value(r->json, gib);
                json_builder_set_member_name(r->json, "transport");
                json_builder_add_string_value(r->json, row_name(row));
                json_builder_set_member_name(r->json, "save");
                json_builder_add_string_value(r->json, when);
                json_builder_set_member_name(r->json, "gbs");
                json_builder_add_double_value(r->json, fs[i].gbs);
                json_builder_set_member_name(r->json, "pause_ms");
                json_builder_add_double_value(r->json, fs[i].pause_ms);
                json_builder_end_object(r->json);
            }
        }
    }
    ok = TRUE;
out:
    json_builder_end_array(r->json);
    if (csv) {
        fclose(csv);
    }
    return ok;
}
