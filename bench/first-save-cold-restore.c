/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A host update's two cases: a VM's first save by a QEMU started
 * normally (no earlier save in that process, no image yet) and its
 * restore by a QEMU that has just started, as a QMP client sees it.
 *
 * Each cycle starts a fresh source (the Linux guest booted to its first
 * tick, or the qtest guest), times `migrate` sent → STOP event
 * (pre-stop: in cpr-reboot mode QEMU stops the VM inside the command,
 * after the transport's out_open) and STOP → `completed` (the pause),
 * quits it, starts a fresh destination and times `migrate-incoming`
 * sent → the first `query-status` reply saying `running`
 * (cpr_restore_seen; pmem: restores with x-preload-transports, as
 * cpr_restore() does).  Variants are visited round-robin, the start
 * rotating, and only the measured cycle's QEMUs run.  The medians feed
 * the issue-18 targets table (targets.c).
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
    const char *name;
    TransportId t;
    MediumId m;
    gboolean preload;       /* x-preload-transports=pmem at the source */
} Variant;

static const Variant variants[] = {
    { "pmem", T_PMEM, MEDIUM_SHM_FORCE, FALSE },
    { "pmem, preloaded", T_PMEM, MEDIUM_SHM_FORCE, TRUE },
    { "file(patched)", T_FILE_PATCHED, MEDIUM_SHM_FORCE, FALSE },
    { "file(stock)", T_FILE_STOCK, MEDIUM_SHM_FORCE, FALSE },
    { "pmem", T_PMEM, MEDIUM_EXT4, FALSE },
    { "file(patched)", T_FILE_PATCHED, MEDIUM_EXT4, FALSE },
    { "file(stock)", T_FILE_STOCK, MEDIUM_EXT4, FALSE },
};
#define N_VARIANTS G_N_ELEMENTS(variants)

/* split of a pmem: pre-stop at the transport's out_open (patched QEMU) */
static const char *const open_trace[] = {
    "-trace", "handle_qmp_command", "-trace", "transport_plugin_open", NULL,
};

/* Per cycle, µs; NAN where it does not apply. */
typedef struct {
    double pre_stop, to_open, pause, commit, fdatasync, pause_sync;
    double reply, resume, running;
} Fresh;

typedef struct {
    GuestKind kind;
    const Variant *v;
    char *dir, *image, *uri;
    GArray *cycles;         /* Fresh */
} Cell;

/* The source's arguments: @base plus the split's trace and the preload. */
static GStrv source_args(const Cell *c, const char *const *base)
{
    GPtrArray *a = g_ptr_array_new();

    for (guint k = 0; base[k]; k++) {
        g_ptr_array_add(a, g_strdup(base[k]));
    }
    for (guint k = 0; bench_transports[c->v->t].patched_qemu &&
                      open_trace[k]; k++) {
        g_ptr_array_add(a, g_strdup(open_trace[k]));
    }
    if (c->v->preload) {
        g_ptr_array_add(a, g_strdup("-global"));
        g_ptr_array_add(a, g_strdup("migration.x-preload-transports=pmem"));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* A fresh source, booted (Linux: its first tick) and settled. */
static QemuProc *start_source(const BenchOpts *o, const Cell *c, GStrv args,
                              GError **errp)
{
    g_autofree char *serial = g_build_filename(c->dir, "serial.log", NULL);
    QemuProcOpts opts = { .binary = bench_qemu_for(o, c->v->t),
                          .args = (const char *const *)args, .dir = c->dir,
                          .name = "src", .qtest = TRUE, .timeout_ms = 60000 };
    QemuProc *vm;

    g_unlink(serial);
    vm = qemu_proc_start(&opts, errp);
    if (vm && c->kind == GUEST_LINUX &&
        !guest_wait_tick(serial, 1, BOOT_TIMEOUT_MS, NULL, errp)) {
        g_clear_pointer(&vm, qemu_proc_free);
    }
    if (vm) {
        g_usleep(50000);    /* start-up settles */
    }
    return vm;
}

static gboolean cycle(const BenchOpts *o, Cell *c, gboolean keep,
                      GError **errp)
{
    CprSetup setup = { .ignore_shared = TRUE };
    Fresh f = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN };
    GuestSpec spec = { c->kind, "256M", TRUE, c->kind == GUEST_QTEST };
    g_auto(GStrv) base = NULL, args = NULL;
    g_autoptr(QemuProc) src = NULL;
    QemuProc *dst = NULL;
    QemuProcOpts dopts;
    CprRestoreSeen seen;
    CprSample s;
    double sent, stop, done;

    cpr_sample_clear(&s);
    bench_set_medium_env(c->v->m);
    g_unlink(c->image);
    base = guest_kind_args(&spec, bench_qemu_for(o, c->v->t), c->dir, errp);
    if (!base) {
        return FALSE;
    }
    args = source_args(c, (const char *const *)base);
    if (!(src = start_source(o, c, args, errp)) ||
        !cpr_setup(qemu_proc_qmp(src), &setup, errp)) {
        return FALSE;
    }
    sent = g_get_real_time();       /* QEMU's event clock */
    if (!qmp_migrate(qemu_proc_qmp(src), c->uri, errp) ||
        !cpr_save_finish(src, &s, &stop, &done, errp)) {
        qemu_proc_add_log_to_error(src, errp);
        return FALSE;
    }
    f.pre_stop = stop - sent;
    f.pause = done - stop;
    if (c->v->t == T_PMEM) {
        g_autofree char *log = qemu_proc_log(src);

        f.to_open = bench_log_time(log, "transport_plugin_open scheme=pmem out",
                                   sent - 1000) -
                    bench_log_time(log, "\"execute\": \"migrate\"",
                                   sent - 1000);
    } else {
        f.fdatasync = bench_fdatasync_us(c->image);
        f.pause_sync = f.pause + f.fdatasync;
    }
    if (!cpr_save_quit(src, &s, errp)) {
        return FALSE;
    }
    f.commit = s.commit_us;
    /* the destination without the split's trace: query-status polls */
    dopts = *qemu_proc_opts(src);
    dopts.args = (const char *const *)base;
    dopts.name = "dst";
    dst = cpr_restore_seen(&dopts, &setup, c->uri, &s, &seen, errp);
    if (!dst) {
        return FALSE;
    }
    qemu_proc_free(dst);
    f.reply = seen.reply_us;
    f.resume = seen.resume_us;
    f.running = seen.running_us;
    if (keep) {
        g_array_append_val(c->cycles, f);
    }
    g_unlink(c->image);
    return TRUE;
}

static Summary column(const Cell *c, size_t off)
{
    g_autofree double *v = g_new(double, c->cycles->len + 1);

    for (guint i = 0; i < c->cycles->len; i++) {
        v[i] = *(const double *)((const char *)&g_array_index(c->cycles,
                                                              Fresh, i) + off);
    }
    return summarize(v, c->cycles->len);
}

static char *fmt_ms(Summary s)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.2f [%.2f–%.2f]", s.median / 1e3,
                             s.min / 1e3, s.max / 1e3);
}

#define COL(f) G_STRUCT_OFFSET(Fresh, f)

static void report_cell(Report *r, const Cell *c, FILE *csv)
{
    static const struct { const char *key; size_t off; } keys[] = {
        { "pre_stop", COL(pre_stop) }, { "to_out_open", COL(to_open) },
        { "pause", COL(pause) }, { "commit", COL(commit) },
        { "fdatasync", COL(fdatasync) },
        { "pause_fdatasync", COL(pause_sync) }, { "reply", COL(reply) },
        { "resume", COL(resume) }, { "running", COL(running) },
    };
    const char *gname = guest_kind_name(c->kind);
    const char *medium = bench_media[c->v->m].on_disk ? "ext4" : "shm";
    char *cells[G_N_ELEMENTS(keys)];

    json_builder_begin_object(r->json);
    json_builder_set_member_name(r->json, "guest");
    json_builder_add_string_value(r->json, gname);
    json_builder_set_member_name(r->json, "medium");
    json_builder_add_string_value(r->json, medium);
    json_builder_set_member_name(r->json, "variant");
    json_builder_add_string_value(r->json, c->v->name);
    for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
        Summary s = column(c, keys[k].off);
        g_autofree char *jkey = g_strdup_printf("%s_us", keys[k].key);
        g_autofree char *tkey = g_strdup_printf("fresh/%s/%s/%s/%s",
                                                keys[k].key, gname, medium,
                                                c->v->name);

        cells[k] = fmt_ms(s);
        json_builder_set_member_name(r->json, jkey);
        json_builder_add_double_value(r->json, isnan(s.median) ? -1
                                                               : s.median);
        bench_target_set(r, tkey, s.median);
    }
    json_builder_end_object(r->json);
    g_string_append_printf(r->md, "| %s | %s | %s", gname, medium,
                           c->v->name);
    for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
        g_string_append_printf(r->md, " | %s", cells[k]);
        g_free(cells[k]);
    }
    g_string_append(r->md, " |\n");
    for (guint i = 0; csv && i < c->cycles->len; i++) {
        const Fresh *f = &g_array_index(c->cycles, Fresh, i);

        fprintf(csv, "%s,%s,%s,%u,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n",
                gname, medium, c->v->name, i, f->pre_stop, f->to_open,
                f->pause, f->commit, f->fdatasync, f->reply, f->resume,
                f->running);
    }
}

gboolean bench_first_save_cold_restore(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    FILE *csv = bench_csv_open(o, "first-save-cold-restore.csv",
        "guest,medium,variant,cycle,pre_stop_us,to_out_open_us,pause_us,"
        "commit_us,fdatasync_us,reply_us,resume_us,running_us");
    g_autoptr(GPtrArray) cells = g_ptr_array_new();
    gboolean ok = FALSE;

    for (guint g = 0; g < 2; g++) {
        GuestKind kind = g ? GUEST_QTEST : GUEST_LINUX;

        if (!(kind == GUEST_LINUX ? o->guest_linux : o->guest_qtest)) {
            continue;
        }
        for (guint k = 0; k < N_VARIANTS; k++) {
            const Variant *v = &variants[k];
            Cell *c;

            /* ext4 with the qtest guest only: a Linux cycle costs its boot */
            if ((bench_transports[v->t].patched_qemu && !*o->qemu) ||
                (kind == GUEST_LINUX && bench_media[v->m].on_disk)) {
                continue;
            }
            c = g_new0(Cell, 1);
            c->kind = kind;
            c->v = v;
            c->dir = g_strdup_printf("%s/fresh-%s-%u", bench_shm_base,
                                     guest_kind_name(kind), k);
            c->image = g_strdup_printf("%s/fresh-%s-%u.img",
                                       bench_medium_dir(v->m),
                                       guest_kind_name(kind), k);
            c->uri = bench_uri(v->t, c->image);
            c->cycles = g_array_new(FALSE, FALSE, sizeof(Fresh));
            g_mkdir_with_parents(c->dir, 0700);
            g_ptr_array_add(cells, c);
        }
    }
    for (guint round = 0; round < o->warmup + o->fresh_cycles; round++) {
        fprintf(stderr, "\r  first save, cold restore: round %u/%u   ",
                round + 1, o->warmup + o->fresh_cycles);
        for (guint i = 0; i < cells->len; i++) {
            Cell *c = cells->pdata[(i + round) % cells->len];

            if (!cycle(o, c, round >= o->warmup, errp)) {
                g_prefix_error(errp, "first save %s/%s/%s: ",
                               guest_kind_name(c->kind),
                               bench_media[c->v->m].name, c->v->name);
                goto out;
            }
        }
    }
    fprintf(stderr, "\n");
    g_string_append_printf(r->md,
        "\n### A fresh source's first save, a fresh destination's restore "
        "(%u cycles after %u warm-up, median [min–max] ms)\n\n"
        "Every cycle starts a new source QEMU (the Linux guest booted to "
        "its first tick, or the qtest guest; 256 MiB on /dev/shm, "
        "x-ignore-shared) with no image, saves it once, quits it, and "
        "restores into a new destination QEMU.  pre-stop = `migrate` sent → "
        "STOP event; to out_open = QEMU's trace `handle_qmp_command` → "
        "`transport_plugin_open` (loading the plugin unless preloaded); "
        "pause = STOP → `completed` (QEMU's event times); commit = the "
        "`vmstate_downtime_checkpoint` commit step; fdatasync = of the "
        "file: image after `completed`; reply, RESUME, running = "
        "`migrate-incoming` sent → its reply, → the RESUME event, → the "
        "first `query-status` saying `running` (polled back to back).  "
        "\"pmem\" is QEMU's default (the plugin loads inside `migrate`); "
        "\"preloaded\" starts the source with "
        "`-global migration.x-preload-transports=pmem`; every pmem: "
        "destination preloads.  shm: PMEM_IS_PMEM_FORCE=1; ext4 (qtest "
        "guest only): %s, msync path.\n\n"
        "| guest | image on | transport | pre-stop | to out_open | pause "
        "| commit | fdatasync | pause + fdatasync | reply | RESUME | running |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        o->fresh_cycles, o->warmup, o->disk_dir);
    json_builder_set_member_name(r->json, "first_save_cold_restore");
    json_builder_begin_array(r->json);
    for (guint i = 0; i < cells->len; i++) {
        report_cell(r, cells->pdata[i], csv);
    }
    json_builder_end_array(r->json);
    ok = TRUE;
out:
    for (guint i = 0; i < cells->len; i++) {
        Cell *c = cells->pdata[i];

        g_unlink(c->image);
        g_free(c->dir);
        g_free(c->image);
        g_free(c->uri);
        g_array_free(c->cycles, TRUE);
        g_free(c);
    }
    if (csv) {
        fclose(csv);
    }
    return ok;
}
