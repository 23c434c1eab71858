/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small-VM pause and restore: one VM chain per (guest, medium, transport),
 * each restored VM becoming the next cycle's source, and the chains
 * visited round-robin so every transport sees the same host noise.
 */
#include "bench.h"
#include "guest-kinds.h"
#include "guest.h"
#include "stats.h"
#include "cpr-cycle.h"

#include <glib/gstdio.h>
#include <math.h>

#define BOOT_TIMEOUT_MS 120000

typedef struct {
    MediumId medium;
    TransportId transport;
    char *name;           /* "shm+force/pmem" */
    char *dir;            /* RAM file, logs */
    char *image;
    char *uri;
    QemuProc *vm;
    GArray *samples;      /* CprSample */
    guint gen;
} Chain;

static gboolean wanted(const BenchOpts *o, MediumId m, TransportId t)
{
    if (bench_transports[t].patched_qemu && !*o->qemu) {
        return FALSE;
    }
    /* file: ignores PMEM_IS_PMEM_FORCE: one shm row covers both */
    return t == T_PMEM || m != MEDIUM_SHM_MSYNC;
}

/* The file: chain whose directory @m's pmem rows are compared with. */
static MediumId file_medium(MediumId m)
{
    return m == MEDIUM_SHM_MSYNC ? MEDIUM_SHM_FORCE : m;
}

static QemuProcOpts chain_opts(const BenchOpts *o, Chain *c, GStrv args)
{
    return (QemuProcOpts){
        .binary = bench_qemu_for(o, c->transport),
        .args = (const char *const *)args, .dir = c->dir,
        .name = c->gen % 2 ? "vm-b" : "vm-a",
        .qtest = TRUE, .timeout_ms = 60000,
    };
}

/*
 * Only the VM being measured runs: the other chains' guests (TCG vCPUs
 * taking timer ticks) would otherwise take CPU from its save at random.
 * Their own STOP/RESUME events are consumed here, so the save finds its.
 */
static gboolean chain_run(Chain *c, gboolean run, GError **errp)
{
    Qmp *qmp = qemu_proc_qmp(c->vm);
    g_autoptr(JsonObject) ev = NULL;

    if (!qmp_run(qmp, run ? "cont" : "stop", NULL, errp) ||
        !(ev = qmp_wait_event(qmp, run ? "RESUME" : "STOP", 10000, errp))) {
        return FALSE;
    }
    if (run) {
        g_usleep(20000);    /* back to its steady state */
    }
    return TRUE;
}

static gboolean chain_cycle(const BenchOpts *o, Chain *c, GStrv args,
                            gboolean keep, GError **errp)
{
    CprSetup setup = { .ignore_shared = TRUE };
    CprSample s;
    QemuProcOpts opts;
    QemuProc *dst;

    cpr_sample_clear(&s);
    bench_set_medium_env(c->medium);
    if (!chain_run(c, TRUE, errp) ||
        !cpr_save(c->vm, &setup, c->uri, &s, errp)) {
        return FALSE;
    }
    if (bench_transports[c->transport].scheme[0] == 'f') {
        GStatBuf st;

        s.fdatasync_us = bench_fdatasync_us(c->image);
        if (g_stat(c->image, &st) == 0) {
            s.stream_bytes = st.st_size;
        }
    }
    c->gen++;
    opts = chain_opts(o, c, args);
    dst = cpr_restore(&opts, &setup, c->uri, &s, errp);
    if (!dst) {
        return FALSE;
    }
    qemu_proc_free(c->vm);
    c->vm = dst;
    if (c->transport == T_PMEM) {
        const char *margs[] = { "validate", o->plugin, c->image, NULL };
        g_autoptr(GHashTable) kv = bench_micro(o, margs, errp);

        if (!kv) {
            return FALSE;
        }
        s.validate_us = bench_micro_get(kv, "in_open_us");
        s.stream_bytes = bench_micro_get(kv, "stream_bytes");
    }
    if (keep) {
        g_array_append_val(c->samples, s);
    }
    return chain_run(c, FALSE, errp);
}

/* Field accessors for the summary columns. */
#define COL(f) (offsetof(CprSample, f) / sizeof(double))

static Summary col(const Chain *c, size_t idx, gboolean plus_sync)
{
    g_autofree double *v = g_new(double, c->samples->len + 1);

    for (guint i = 0; i < c->samples->len; i++) {
        const double *s = (const double *)&g_array_index(c->samples,
                                                         CprSample, i);
        v[i] = s[idx] + (plus_sync ? s[COL(fdatasync_us)] : 0);
    }
    return summarize(v, c->samples->len);
}

/* Median of per-round ratios a[i]/b[i] of column @idx (+fdatasync on b). */
static Summary pair_ratio(const Chain *a, const Chain *b, size_t idx,
                          gboolean b_sync)
{
    guint n = MIN(a->samples->len, b->samples->len);
    g_autofree double *v = g_new(double, n + 1);

    for (guint i = 0; i < n; i++) {
        const double *x = (const double *)&g_array_index(a->samples, CprSample, i);
        const double *y = (const double *)&g_array_index(b->samples, CprSample, i);

        v[i] = x[idx] / (y[idx] + (b_sync ? y[COL(fdatasync_us)] : 0));
    }
    return summarize(v, n);
}

static char *fmt_ms(Summary s)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.2f [%.2f–%.2f]", s.median / 1e3, s.min / 1e3,
                             s.max / 1e3);
}

static char *fmt_us(Summary s)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.0f [%.0f–%.0f]", s.median, s.min, s.max);
}

static char *fmt_ratio(Summary s)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.2f [%.2f–%.2f]", s.median, s.min, s.max);
}

static void json_summary(JsonBuilder *j, const char *key, Summary s)
{
    json_builder_set_member_name(j, key);
    json_builder_begin_object(j);
    json_builder_set_member_name(j, "median");
    json_builder_add_double_value(j, isnan(s.median) ? -1 : s.median);
    json_builder_set_member_name(j, "min");
    json_builder_add_double_value(j, isnan(s.min) ? -1 : s.min);
    json_builder_set_member_name(j, "max");
    json_builder_add_double_value(j, isnan(s.max) ? -1 : s.max);
    json_builder_end_object(j);
}

static void write_csv(FILE *f, const char *guest, const Chain *c)
{
    for (guint i = 0; f && i < c->samples->len; i++) {
        const CprSample *s = &g_array_index(c->samples, CprSample, i);

        fprintf(f, "%s,%s,%s,%u,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n",
                guest, bench_media[c->medium].name,
                bench_transports[c->transport].name, i, s->pause_us,
                s->downtime_us, s->stop_us, s->saved_us, s->commit_us,
                s->fdatasync_us, s->stream_bytes, s->qmp_ready_us,
                s->incoming_us, s->validate_us);
    }
}

/* One table row; @sync: the derived "+fdatasync" row of a file: chain. */
static void row(Report *r, const char *guest, const Chain *c, const Chain *ref,
                gboolean sync, FILE *dat)
{
    g_autofree char *pause = fmt_ms(col(c, COL(pause_us), sync));
    g_autofree char *down = fmt_ms(col(c, COL(downtime_us), FALSE));
    g_autofree char *stop = fmt_us(col(c, COL(stop_us), FALSE));
    g_autofree char *saved = fmt_us(col(c, COL(saved_us), FALSE));
    g_autofree char *commit = fmt_us(col(c, COL(commit_us), FALSE));
    g_autofree char *fsync = fmt_us(col(c, COL(fdatasync_us), FALSE));
    g_autofree char *ready = fmt_ms(col(c, COL(qmp_ready_us), FALSE));
    g_autofree char *inc = fmt_ms(col(c, COL(incoming_us), FALSE));
    g_autofree char *val = fmt_us(col(c, COL(validate_us), FALSE));
    Summary bytes = col(c, COL(stream_bytes), FALSE);
    Summary pr = { NAN, NAN, NAN, 0 }, prs = pr, rr = pr;
    g_autofree char *tname = g_strdup_printf("%s%s",
        bench_transports[c->transport].name, sync ? "+fdatasync" : "");
    JsonBuilder *j = r->json;

    if (ref && !sync) {
        pr = pair_ratio(c, ref, COL(pause_us), FALSE);
        prs = pair_ratio(c, ref, COL(pause_us), TRUE);
        rr = pair_ratio(c, ref, COL(incoming_us), FALSE);
    }
    g_autofree char *prt = fmt_ratio(pr);
    g_autofree char *prst = fmt_ratio(prs);
    g_autofree char *rrt = fmt_ratio(rr);

    g_string_append_printf(r->md,
        "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s |\n",
        guest, bench_media[c->medium].name, tname,
        sync ? "fdatasync(file) measured after completed, added"
             : bench_transports[c->transport].durability,
        pause, down, stop, saved, commit, sync ? fsync : "-",
        bytes.median / 1024, ready, inc, val, prt, prst, rrt);

    json_builder_begin_object(j);
    json_builder_set_member_name(j, "guest");
    json_builder_add_string_value(j, guest);
    json_builder_set_member_name(j, "medium");
    json_builder_add_string_value(j, bench_media[c->medium].name);
    json_builder_set_member_name(j, "transport");
    json_builder_add_string_value(j, tname);
    json_builder_set_member_name(j, "cycles");
    json_builder_add_int_value(j, c->samples->len);
    json_summary(j, "pause_us", col(c, COL(pause_us), sync));
    json_summary(j, "downtime_us", col(c, COL(downtime_us), FALSE));
    json_summary(j, "vm_stop_us", col(c, COL(stop_us), FALSE));
    json_summary(j, "device_save_us", col(c, COL(saved_us), FALSE));
    json_summary(j, "transport_commit_us", col(c, COL(commit_us), FALSE));
    json_summary(j, "fdatasync_us", col(c, COL(fdatasync_us), FALSE));
    json_summary(j, "stream_bytes", bytes);
    json_summary(j, "dst_qmp_ready_us", col(c, COL(qmp_ready_us), FALSE));
    json_summary(j, "incoming_to_running_us", col(c, COL(incoming_us), FALSE));
    json_summary(j, "validate_us", col(c, COL(validate_us), FALSE));
    json_summary(j, "pause_ratio_vs_stock_file", pr);
    json_summary(j, "pause_ratio_vs_stock_file_fdatasync", prs);
    json_summary(j, "restore_ratio_vs_stock_file", rr);
    json_builder_end_object(j);

    if (dat) {
        Summary p = col(c, COL(pause_us), sync);
        Summary in = col(c, COL(incoming_us), FALSE);

        fprintf(dat, "\"%s %s %s\" %.3f %.3f %.3f %.3f %.3f %.3f\n",
                guest, bench_media[c->medium].name, tname,
                p.median / 1e3, p.min / 1e3, p.max / 1e3,
                in.median / 1e3, in.min / 1e3, in.max / 1e3);
    }
}

static gboolean run_guest(Report *r, GuestKind kind, FILE *csv, FILE *dat,
                          GError **errp)
{
    const BenchOpts *o = r->opts;
    GuestSpec spec = { kind, o->ram_size, TRUE, kind == GUEST_QTEST };
    const char *gname = guest_kind_name(kind);
    g_autoptr(GPtrArray) chains = g_ptr_array_new();
    GStrv args[N_MEDIA * N_TRANSPORTS] = { 0 };
    Chain *by[N_MEDIA][N_TRANSPORTS] = { { 0 } };
    gboolean ok = FALSE;

    for (MediumId m = 0; m < N_MEDIA; m++) {
        for (TransportId t = 0; t < N_TRANSPORTS; t++) {
            Chain *c;
            QemuProcOpts opts;

            if (!wanted(o, m, t)) {
                continue;
            }
            c = g_new0(Chain, 1);
            c->medium = m;
            c->transport = t;
            c->name = g_strdup_printf("%s/%s/%s", gname, bench_media[m].name,
                                      bench_transports[t].name);
            c->dir = g_strdup_printf("%s/%s-%s-%d", bench_shm_base, gname,
                                     bench_media[m].name, t);
            c->image = g_strdup_printf("%s/%s-%s-%d.img", bench_medium_dir(m),
                                       gname, bench_media[m].name, t);
            c->uri = bench_uri(t, c->image);
            c->samples = g_array_new(FALSE, FALSE, sizeof(CprSample));
            g_mkdir_with_parents(c->dir, 0700);
            by[m][t] = c;
            g_ptr_array_add(chains, c);
            args[chains->len - 1] = guest_kind_args(&spec, bench_qemu_for(o, t),
                                                    c->dir, errp);
            if (!args[chains->len - 1]) {
                goto out;
            }
            bench_set_medium_env(m);
            opts = chain_opts(o, c, args[chains->len - 1]);
            c->vm = qemu_proc_start(&opts, errp);
            if (!c->vm) {
                goto out;
            }
            /* one guest boots at a time: seven TCG boots at once on a
             * loaded host took more than the timeout */
            if (kind == GUEST_LINUX) {
                g_autofree char *serial = g_build_filename(c->dir,
                                                           "serial.log", NULL);

                if (!guest_wait_tick(serial, 1, BOOT_TIMEOUT_MS, NULL, errp)) {
                    goto out;
                }
            }
            if (!chain_run(c, FALSE, errp)) {
                goto out;
            }
        }
    }
    for (guint round = 0; round < o->warmup + o->cycles; round++) {
        fprintf(stderr, "\r  %s: round %u/%u   ", gname, round + 1,
                o->warmup + o->cycles);
        for (guint i = 0; i < chains->len; i++) {
            /* rotate the start so no transport always goes first */
            guint k = (i + round) % chains->len;

            if (!chain_cycle(o, chains->pdata[k], args[k], round >= o->warmup,
                             errp)) {
                g_prefix_error(errp, "%s: ", ((Chain *)chains->pdata[k])->name);
                goto out;
            }
        }
    }
    fprintf(stderr, "\n");

    for (MediumId m = 0; m < N_MEDIA; m++) {
        for (TransportId t = 0; t < N_TRANSPORTS; t++) {
            Chain *c = by[m][t];
            Chain *ref = by[file_medium(m)][T_FILE_STOCK];

            if (!c) {
                continue;
            }
            write_csv(csv, gname, c);
            row(r, gname, c, ref, FALSE, dat);
            if (t != T_PMEM) {
                row(r, gname, c, NULL, TRUE, dat);
            }
        }
    }
    ok = TRUE;
out:
    for (guint i = 0; i < chains->len; i++) {
        Chain *c = chains->pdata[i];

        g_clear_pointer(&c->vm, qemu_proc_free);
        g_unlink(c->image);
        g_free(c->name);
        g_free(c->dir);
        g_free(c->image);
        g_free(c->uri);
        g_array_free(c->samples, TRUE);
        g_free(c);
        g_strfreev(args[i]);
    }
    return ok;
}

/* "256M" -> bytes; no suffix is MiB, as for QEMU's -m. */
static guint64 parse_size(const char *s)
{
    char *end = NULL;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    int shift = 20;

    switch (end ? g_ascii_toupper(*end) : 0) {
    case 'K': shift = 10; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
    }
    return v << shift;
}

/* cpr-abi-micro writes a RAM block up to 4 GiB, leaves a larger sparse. */
#define SPARSE_ABOVE (G_GUINT64_CONSTANT(4) << 30)

static char *fmt_size(guint64 v)
{
    return v >= (G_GUINT64_CONSTANT(1) << 30)
           ? g_strdup_printf("%" G_GUINT64_FORMAT " GiB", v >> 30)
           : g_strdup_printf("%" G_GUINT64_FORMAT " MiB", v >> 20);
}

/*
 * The binding's own share (backend/BINDING.md): cpr-abi-micro saves a
 * small stream through the ABI with no RAM left in place and with one
 * RAM block, alternating, and reports the medians of the differences.
 * The image is on /dev/shm with PMEM_IS_PMEM_FORCE=1 (a cheap commit, so
 * the difference is not lost in the noise of ext4's flushes); the RAM
 * block on tmpfs and on ext4: the qtest guest's RAM, 1 GiB (written) and
 * 64 GiB (sparse).
 */
static gboolean binding_share(Report *r, GError **errp)
{
    static const MediumId ram_media[] = { MEDIUM_SHM_FORCE, MEDIUM_EXT4 };
    const BenchOpts *o = r->opts;
    const guint64 sizes[] = { parse_size(o->ram_size),
                              G_GUINT64_CONSTANT(1) << 30,
                              G_GUINT64_CONSTANT(64) << 30 };
    gboolean smoke = o->cycles <= 2;
    g_autofree char *reps = g_strdup_printf("%u", smoke ? 5 : 50);
    g_autofree char *img = g_strdup_printf("%s/binding.img",
                                           bench_medium_dir(MEDIUM_SHM_FORCE));

    g_string_append_printf(r->md,
        "\n#### The binding's share (cpr-abi-micro: a 300 KiB save through "
        "the ABI without and with one RAM block left in place, alternating; "
        "medians of %s pairs, µs)\n\n"
        "The pmem rows above bind each image to the VM's RAM block "
        "(x-ignore-shared, RAM in a `memory-backend-file,share=on`): their "
        "commit column includes it.  Here the same calls without QEMU, the "
        "image on /dev/shm with `PMEM_IS_PMEM_FORCE=1`: `out_commit` pays "
        "one fstat and 64 page hashes per block, whatever its size; "
        "`out_open` (the VM still runs) maps in the pages the commit will "
        "sample; `in_open` compares them.\n\n"
        "| RAM block | out_commit µs, no RAM block | out_commit µs, with it "
        "| binding's share of the pause µs | its share of out_open µs (VM "
        "runs) | its share of in_open µs |\n"
        "|---|---|---|---|---|---|\n", reps);
    json_builder_set_member_name(r->json, "binding_share");
    json_builder_begin_array(r->json);
    bench_set_medium_env(MEDIUM_SHM_FORCE);
    for (guint i = 0; i < G_N_ELEMENTS(ram_media); i++) {
        for (guint k = 0; k < G_N_ELEMENTS(sizes); k++) {
            if (smoke && k == 1) {
                continue;   /* seconds, not a GiB written to disk */
            }
            MediumId m = ram_media[i];
            g_autofree char *ram = g_strdup_printf("%s/binding-%u.ram",
                                                   bench_medium_dir(m), k);
            g_autofree char *bytes = g_strdup_printf("%" G_GUINT64_FORMAT,
                                                     sizes[k]);
            g_autofree char *size = fmt_size(sizes[k]);
            const char *args[] = { "save", o->plugin, img, "307200", reps,
                                   ram, bytes, NULL };
            static const char *const keys[] = {
                "out_commit_us", "out_commit_ram_us", "binding_commit_us",
                "binding_open_us", "binding_in_open_us",
            };
            const char *fs = bench_media[m].on_disk ? "ext4" : "tmpfs";
            g_autoptr(GHashTable) kv = NULL;

            kv = bench_micro(o, args, errp);
            g_unlink(img);
            g_unlink(ram);
            if (!kv) {
                json_builder_end_array(r->json);
                return FALSE;
            }
            g_string_append_printf(r->md, "| %s, %s, %s", size, fs,
                                   sizes[k] > SPARSE_ABOVE ? "sparse"
                                                           : "written");
            json_builder_begin_object(r->json);
            json_builder_set_member_name(r->json, "ram_fs");
            json_builder_add_string_value(r->json, fs);
            json_builder_set_member_name(r->json, "ram_bytes");
            json_builder_add_int_value(r->json, (gint64)sizes[k]);
            for (guint j = 0; j < G_N_ELEMENTS(keys); j++) {
                double v = bench_micro_get(kv, keys[j]);

                g_string_append_printf(r->md, " | %.1f", v);
                json_builder_set_member_name(r->json, keys[j]);
                json_builder_add_double_value(r->json, isnan(v) ? -1 : v);
            }
            json_builder_end_object(r->json);
            g_string_append(r->md, " |\n");
        }
    }
    json_builder_end_array(r->json);
    return TRUE;
}

gboolean bench_latency(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    g_autofree char *datp = g_build_filename(o->out_dir, "latency.dat", NULL);
    FILE *csv = bench_csv_open(o, "latency.csv",
        "guest,medium,transport,cycle,pause_us,downtime_us,vm_stop_us,"
        "device_save_us,transport_commit_us,fdatasync_us,stream_bytes,"
        "dst_qmp_ready_us,incoming_to_running_us,validate_us");
    FILE *dat = fopen(datp, "w");
    gboolean ok = TRUE;

    g_string_append_printf(r->md,
        "\n### Small VM: pause and restore (%u cycles after %u warm-up, "
        "median [min–max])\n\n"
        "pause = QMP STOP event → MIGRATION \"completed\" event (QEMU's own "
        "timestamps); phases from `vmstate_downtime_checkpoint` trace points: "
        "VM stop = downtime-start → vm-stopped, device save = vm-stopped → "
        "non-iterable-saved, commit = non-iterable-saved → "
        "transport-committed (for pmem it includes binding the image to the "
        "VM's RAM block, see the binding's share below). Ratios are per "
        "round (alternating cycles) "
        "against stock `file:` on the same directory, without and with its "
        "fdatasync. Restore = `migrate-incoming` sent → RESUME event "
        "(includes `in_open` validation).\n\n"
        "| guest | medium | transport | at `completed` | pause ms | QEMU downtime ms "
        "| VM stop µs | device save µs | commit µs | fdatasync µs | stream KiB "
        "| dst start→QMP ms | incoming→running ms | validate µs "
        "| pause / stock file | pause / (stock file+fdatasync) "
        "| restore / stock file |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        o->cycles, o->warmup);
    json_builder_set_member_name(r->json, "latency");
    json_builder_begin_array(r->json);
    if (o->guest_qtest) {
        ok = run_guest(r, GUEST_QTEST, csv, dat, errp);
    }
    if (ok && o->guest_linux) {
        ok = run_guest(r, GUEST_LINUX, csv, dat, errp);
    }
    json_builder_end_array(r->json);
    if (ok && *o->qemu) {
        ok = binding_share(r, errp);
    }
    if (csv) {
        fclose(csv);
    }
    if (dat) {
        fclose(dat);
    }
    return ok;
}
