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
#include "stats.h"

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
#define SETTLE_S 2
static const char *const save_names[SAVES] = {
    "1st", "2nd", "3rd (steady)",
};

/* A qtest VM of @gib GiB for transport @t, in @dir, its RAM filled; the
 * image @img removed first.  @opts (with @args) start its restores. */
static QemuProc *start_filled(const BenchOpts *o, TransportId t, guint gib,
                              const char *dir, const char *img,
                              QemuProcOpts *opts, GStrv *args, GError **errp)
{
    g_autofree char *ram = g_strdup_printf("%uG", gib);
    GuestSpec spec = { GUEST_QTEST, ram, FALSE, FALSE };
    QemuProc *vm;

    g_mkdir_with_parents(dir, 0700);
    g_unlink(img);
    bench_set_medium_env(MEDIUM_SHM_FORCE);
    *args = guest_kind_args(&spec, bench_qemu_for(o, t), dir, errp);
    if (!*args) {
        return NULL;
    }
    *opts = (QemuProcOpts){ .binary = bench_qemu_for(o, t),
                            .args = (const char *const *)*args, .dir = dir,
                            .name = "vm", .qtest = TRUE,
                            .timeout_ms = 60000 };
    vm = qemu_proc_start(opts, errp);
    if (vm && !fill_ram(qemu_proc_qtest(vm), gib, errp)) {
        g_clear_pointer(&vm, qemu_proc_free);
    }
    return vm;
}

static gboolean saves(Report *r, const FrRow *row, guint gib,
                      FullSave out[SAVES], GError **errp)
{
    const BenchOpts *o = r->opts;
    TransportId t = row->t;
    CprSetup setup = { .ignore_shared = FALSE };
    g_autofree char *dir = g_strdup_printf("%s/fullram", bench_shm_base);
    g_autofree char *img = g_strdup_printf("%s/fullram.img", bench_shm_base);
    g_autofree char *uri = bench_uri(t, img);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) vm = NULL;
    QemuProcOpts opts;
    gboolean ok = FALSE;

    vm = start_filled(o, t, gib, dir, img, &opts, &args, errp);
    if (!vm || (row->created && !create_image(img, gib, errp))) {
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

    if (!o->full_ram_stream) {
        g_string_append_printf(r->md, "\nmemcpy bandwidth, same run: "
                               "**%.2f GB/s** (best of 5, 512 MiB)\n", mc);
        json_builder_set_member_name(r->json, "memcpy_gbs");
        json_builder_add_double_value(r->json, mc);
        if (csv) {
            fclose(csv);
        }
        return !o->full_ram_mapped || bench_full_ram_mapped(r, mc, errp);
    }
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
    return ok && (!o->full_ram_mapped || bench_full_ram_mapped(r, mc, errp));
}

/*
 * mapped-ram: every RAM page at its own offset of the stream, written with
 * positional writes (by the multifd threads, with channels), zero pages
 * left out.  pmem: (patched QEMU) against stock QEMU's file: with the same
 * capabilities; same chain of real reboots as above, and each save's
 * restore timed too.  Rounds alternate the transports' order, so both
 * see the same host noise; throughput is guest RAM / seconds for both
 * (the streams are the same size, RAM plus a few MiB).
 */
typedef struct {
    double save_s[SAVES];
    double restore_s[SAVES];
} MrChain;

static const TransportId mr_transports[] = { T_PMEM, T_FILE_STOCK };

/* The restored RAM must be the 0x5a that fill_ram() wrote. */
static gboolean check_ram(Qtest *qt, guint gib, GError **errp)
{
    guint64 total = (guint64)gib * GIB;
    guint64 low = total >= 0xb0000000ULL ? 0x80000000ULL : total;
    guint64 addrs[] = { MIB, low - 1, total > low ? 4 * GIB : MIB,
                        total > low ? 4 * GIB + total - low - 1 : low / 2 };

    for (guint i = 0; i < G_N_ELEMENTS(addrs); i++) {
        guint8 b = 0;

        if (!qtest_readb(qt, addrs[i], &b, errp)) {
            return FALSE;
        }
        if (b != 0x5a) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "restored RAM at 0x%" G_GINT64_MODIFIER "x holds "
                        "0x%02x, not 0x5a", addrs[i], b);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean mapped_chain(const BenchOpts *o, TransportId t,
                             guint channels, guint gib, MrChain *c,
                             GError **errp)
{
    CprSetup setup = { .ignore_shared = FALSE, .mapped_ram = TRUE,
                       .multifd_channels = channels };
    g_autofree char *dir = g_strdup_printf("%s/mapped", bench_shm_base);
    g_autofree char *img = g_strdup_printf("%s/mapped.img", bench_shm_base);
    g_autofree char *uri = bench_uri(t, img);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) vm = NULL;
    QemuProcOpts opts;
    gboolean ok = FALSE;

    vm = start_filled(o, t, gib, dir, img, &opts, &args, errp);
    if (!vm) {
        goto out;
    }
    for (int i = 0; i < SAVES; i++) {
        CprSample s, rs;

        cpr_sample_clear(&s);
        cpr_sample_clear(&rs);
        if (i) {
            g_usleep(SETTLE_S * gib * G_USEC_PER_SEC);
        }
        if (!cpr_save(vm, &setup, uri, &s, errp)) {
            goto out;
        }
        if (t != T_PMEM) {
            s.pause_us += bench_fdatasync_us(img);
        }
        c->save_s[i] = s.pause_us / 1e6;
        g_clear_pointer(&vm, qemu_proc_free);
        vm = cpr_restore(&opts, &setup, uri, &rs, errp);
        if (!vm || !check_ram(qemu_proc_qtest(vm), gib, errp)) {
            goto out;
        }
        c->restore_s[i] = rs.incoming_us / 1e6;
        fprintf(stderr, "    %s, %u ch, save %d: %.3f s, restore %.3f s\n",
                bench_transports[t].name, channels, i + 1, c->save_s[i],
                c->restore_s[i]);
    }
    ok = TRUE;
out:
    g_clear_pointer(&vm, qemu_proc_free);
    g_unlink(img);
    return ok;
}

/* "median (min-max)" */
static void md_summary(GString *md, Summary s, const char *fmt)
{
    g_autofree char *f = g_strdup_printf("%s (%s-%s)", fmt, fmt, fmt);

    if (!s.n) {
        g_string_append(md, "-");
        return;
    }
    g_string_append_printf(md, f, s.median, s.min, s.max);
}

/* target_gbs -- a save's median GB/s for the targets table: the first
 * save ("first") and the steady state (the 3rd save, "steady") */
static void target_gbs(Report *r, guint gib, guint ch, TransportId t,
                       int save, double gbs)
{
    g_autofree char *key = g_strdup_printf("mapped/%s/%u/%u/%s",
                                           save ? "steady" : "first", gib, ch,
                                           bench_transports[t].name);

    if (save == 0 || save == SAVES - 1) {
        bench_target_set(r, key, gbs);
    }
}

gboolean bench_full_ram_mapped(Report *r, double mc, GError **errp)
{
    const BenchOpts *o = r->opts;
    guint ngib = o->full_ram_gib->len, nch = o->mapped_channels->len;
    guint nt = G_N_ELEMENTS(mr_transports), rounds = o->full_ram_rounds;
    guint ncfg = ngib * nch * nt;
    g_autofree MrChain *res = g_new0(MrChain, ncfg * rounds);
    FILE *csv = bench_csv_open(o, "mapped-ram.csv",
                               "round,gib,channels,transport,save,save_s,"
                               "restore_s,save_gbs,restore_gbs,memcpy_gbs");
    gboolean ok = FALSE;

#define CFG(g, c, t) (((g) * nch + (c)) * nt + (t))
    for (guint rd = 0; rd < rounds; rd++) {
        for (guint g = 0; g < ngib; g++) {
            guint gib = g_array_index(o->full_ram_gib, guint, g);

            for (guint c = 0; c < nch; c++) {
                guint ch = g_array_index(o->mapped_channels, guint, c);

                for (guint k = 0; k < nt; k++) {
                    /* odd rounds run the transports in reverse order */
                    guint ti = rd % 2 ? nt - 1 - k : k;
                    TransportId t = mr_transports[ti];
                    MrChain *mc_ = &res[rd * ncfg + CFG(g, c, ti)];

                    if (bench_transports[t].patched_qemu && !*o->qemu) {
                        for (int i = 0; i < SAVES; i++) {
                            mc_->save_s[i] = mc_->restore_s[i] = NAN;
                        }
                        continue;
                    }
                    fprintf(stderr, "  mapped-ram round %u: %u GiB, %u "
                            "channels, %s\n", rd + 1, gib, ch,
                            bench_transports[t].name);
                    if (!mapped_chain(o, t, ch, gib, mc_, errp)) {
                        goto out;
                    }
                    for (int i = 0; csv && i < SAVES; i++) {
                        fprintf(csv, "%u,%u,%u,%s,%d,%.4f,%.4f,%.3f,%.3f,%.3f\n",
                                rd + 1, gib, ch, bench_transports[t].name,
                                i + 1, mc_->save_s[i], mc_->restore_s[i],
                                gib * GIB / mc_->save_s[i] / 1e9,
                                gib * GIB / mc_->restore_s[i] / 1e9, mc);
                    }
                }
            }
        }
    }
    ok = TRUE;

    g_string_append_printf(r->md,
        "\n### Full-RAM save and restore with mapped-ram, /dev/shm\n\n"
        "No x-ignore-shared; RAM filled with 0x5a via qtest memset; "
        "capabilities mapped-ram (+ multifd with N channels), "
        "max-bandwidth 1 TiB/s, the same for both transports.  pmem: with "
        "PMEM_IS_PMEM_FORCE=1, patched QEMU; file: is stock QEMU (+ an "
        "fdatasync, a no-op on tmpfs).  Each chain is three real reboots "
        "(save 1 into no image, saves 2 and 3 by QEMUs restored from the "
        "previous save, %d s per GiB after their restore); each save's "
        "restore is timed (migrate-incoming -> RESUME, verification "
        "included).  GB/s = guest RAM / seconds.  %u interleaved rounds: "
        "median (min-max).  memcpy: %.2f GB/s.\n\n"
        "| RAM | channels | transport | save | save s | save GB/s | vs memcpy "
        "| restore s | restore GB/s |\n"
        "|---|---|---|---|---|---|---|---|---|\n", SETTLE_S, rounds, mc);
    bench_target_set(r, "memcpy_gbs", mc);
    json_builder_set_member_name(r->json, "mapped_ram");
    json_builder_begin_array(r->json);
    for (guint g = 0; g < ngib; g++) {
        guint gib = g_array_index(o->full_ram_gib, guint, g);

        for (guint c = 0; c < nch; c++) {
            guint ch = g_array_index(o->mapped_channels, guint, c);

            for (guint ti = 0; ti < nt; ti++) {
                for (int i = 0; i < SAVES; i++) {
                    double sv[rounds], rv[rounds], sg[rounds], rg[rounds];
                    Summary ss, rs, sgs, rgs;

                    for (guint rd = 0; rd < rounds; rd++) {
                        const MrChain *m = &res[rd * ncfg + CFG(g, c, ti)];

                        sv[rd] = m->save_s[i];
                        rv[rd] = m->restore_s[i];
                        sg[rd] = gib * GIB / sv[rd] / 1e9;
                        rg[rd] = gib * GIB / rv[rd] / 1e9;
                    }
                    ss = summarize(sv, rounds);
                    rs = summarize(rv, rounds);
                    sgs = summarize(sg, rounds);
                    rgs = summarize(rg, rounds);
                    if (!ss.n) {
                        continue;
                    }
                    target_gbs(r, gib, ch, mr_transports[ti], i, sgs.median);
                    g_string_append_printf(r->md, "| %u GiB | %u | %s | %s | ",
                        gib, ch, bench_transports[mr_transports[ti]].name,
                        save_names[i]);
                    md_summary(r->md, ss, "%.3f");
                    g_string_append(r->md, " | ");
                    md_summary(r->md, sgs, "%.2f");
                    g_string_append_printf(r->md, " | %.0f %% | ",
                                           100 * sgs.median / mc);
                    md_summary(r->md, rs, "%.3f");
                    g_string_append(r->md, " | ");
                    md_summary(r->md, rgs, "%.2f");
                    g_string_append(r->md, " |\n");
                    json_builder_begin_object(r->json);
                    json_builder_set_member_name(r->json, "gib");
                    json_builder_add_int_value(r->json, gib);
                    json_builder_set_member_name(r->json, "channels");
                    json_builder_add_int_value(r->json, ch);
                    json_builder_set_member_name(r->json, "transport");
                    json_builder_add_string_value(r->json,
                        bench_transports[mr_transports[ti]].name);
                    json_builder_set_member_name(r->json, "save");
                    json_builder_add_string_value(r->json, save_names[i]);
                    json_builder_set_member_name(r->json, "save_gbs");
                    json_builder_add_double_value(r->json, sgs.median);
                    json_builder_set_member_name(r->json, "restore_gbs");
                    json_builder_add_double_value(r->json, rgs.median);
                    json_builder_end_object(r->json);
                }
            }
            /* steady state: saves 2 and 3, pmem / stock per round */
            {
                double sr[2 * rounds], rr[2 * rounds];
                guint n = 0;
                Summary a, b;

                for (guint rd = 0; rd < rounds; rd++) {
                    const MrChain *p = &res[rd * ncfg + CFG(g, c, 0)];
                    const MrChain *f = &res[rd * ncfg + CFG(g, c, 1)];

                    for (int i = 1; i < SAVES; i++, n++) {
                        sr[n] = f->save_s[i] / p->save_s[i];
                        rr[n] = f->restore_s[i] / p->restore_s[i];
                    }
                }
                a = summarize(sr, n);
                b = summarize(rr, n);
                {
                    g_autofree char *key = g_strdup_printf(
                        "mapped/steady_ratio/%u/%u", gib, ch);

                    bench_target_set(r, key, a.n ? a.median : NAN);
                }
                if (a.n) {
                    g_string_append_printf(r->md, "| %u GiB | %u | **pmem / "
                        "stock file, saves 2-3** | | | ", gib, ch);
                    md_summary(r->md, a, "%.2fx");
                    g_string_append(r->md, " | | | ");
                    md_summary(r->md, b, "%.2fx");
                    g_string_append(r->md, " |\n");
                }
            }
        }
    }
    json_builder_end_array(r->json);
#undef CFG
out:
    if (csv) {
        fclose(csv);
    }
    return ok;
}
