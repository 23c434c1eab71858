/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The restore seen from outside: when does a management client polling
 * query-status learn that a restored VM runs, next to QEMU's RESUME
 * event?  QEMU emits RESUME from the main-loop callback that ends the
 * incoming migration; the same callback then cleans up (the transport's
 * in_close included), and query-status waits for it.
 *
 * One chain per (guest, variant), /dev/shm with PMEM_IS_PMEM_FORCE=1,
 * every restored VM the next cycle's source, chains visited round-robin
 * (the start rotating), only the measured VM running.  Variants: pmem:
 * as shipped, pmem: with the room thread switched off
 * (CPR_PMEM_NO_ROOM=1, for attribution only), patched and stock file:.
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
    gboolean no_room;
    gboolean baseline;      /* pmem: from --baseline-transport */
} Variant;

static const Variant variants[] = {
    { "pmem", T_PMEM, FALSE, FALSE },
    { "pmem, no room thread", T_PMEM, TRUE, FALSE },
    { "pmem (baseline .so)", T_PMEM, FALSE, TRUE },
    { "file(patched)", T_FILE_PATCHED, FALSE, FALSE },
    { "file(stock)", T_FILE_STOCK, FALSE, FALSE },
};
#define N_VARIANTS G_N_ELEMENTS(variants)
#define REF 4   /* file(stock) */

static char *plugins;       /* QEMU_TRANSPORT_PLUGIN_DIR of this build */

typedef struct {
    const Variant *v;
    char *dir, *image, *uri;
    GStrv args;
    QemuProc *vm;
    GArray *seen;      /* CprRestoreSeen */
    guint gen;
} Chain;

static QemuProcOpts opts_for(const BenchOpts *o, Chain *c)
{
    return (QemuProcOpts){
        .binary = bench_qemu_for(o, c->v->t),
        .args = (const char *const *)c->args, .dir = c->dir,
        .name = c->gen % 2 ? "vm-b" : "vm-a", .qtest = TRUE,
        .timeout_ms = 60000,
    };
}

static void set_env(const BenchOpts *o, const Chain *c)
{
    bench_set_medium_env(MEDIUM_SHM_FORCE);
    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR",
             c->v->baseline ? o->baseline_transport_dir : plugins, TRUE);
    if (c->v->no_room) {
        g_setenv("CPR_PMEM_NO_ROOM", "1", TRUE);
    } else {
        g_unsetenv("CPR_PMEM_NO_ROOM");
    }
}

static gboolean run_vm(QemuProc *vm, gboolean run, GError **errp)
{
    Qmp *qmp = qemu_proc_qmp(vm);
    g_autoptr(JsonObject) ev = NULL;

    if (!qmp_run(qmp, run ? "cont" : "stop", NULL, errp) ||
        !(ev = qmp_wait_event(qmp, run ? "RESUME" : "STOP", 10000, errp))) {
        return FALSE;
    }
    if (run) {
        g_usleep(20000);
    }
    return TRUE;
}

static gboolean cycle(const BenchOpts *o, Chain *c, gboolean keep,
                      GError **errp)
{
    CprSetup setup = { .ignore_shared = TRUE };
    CprRestoreSeen seen;
    CprSample s;
    QemuProcOpts opts;
    QemuProc *dst;

    cpr_sample_clear(&s);
    set_env(o, c);
    if (!run_vm(c->vm, TRUE, errp) ||
        !cpr_save(c->vm, &setup, c->uri, &s, errp)) {
        return FALSE;
    }
    c->gen++;
    opts = opts_for(o, c);
    dst = cpr_restore_seen(&opts, &setup, c->uri, &s, &seen, errp);
    g_unsetenv("CPR_PMEM_NO_ROOM");
    if (!dst) {
        return FALSE;
    }
    qemu_proc_free(c->vm);
    c->vm = dst;
    if (keep) {
        g_array_append_val(c->seen, seen);
    }
    /* let the room thread finish before the next chain's cycle */
    g_usleep(50000);
    return run_vm(c->vm, FALSE, errp);
}

#define F(f) (offsetof(CprRestoreSeen, f) / sizeof(double))

static double field(const Chain *c, guint i, size_t f)
{
    return ((const double *)&g_array_index(c->seen, CprRestoreSeen, i))[f];
}

static Summary col(const Chain *c, size_t f, size_t minus)
{
    g_autofree double *v = g_new(double, c->seen->len + 1);

    for (guint i = 0; i < c->seen->len; i++) {
        v[i] = field(c, i, f) - (minus == (size_t)-1 ? 0 : field(c, i, minus));
    }
    return summarize(v, c->seen->len);
}

static Summary ratio(const Chain *a, const Chain *b, size_t f)
{
    guint n = MIN(a->seen->len, b->seen->len);
    g_autofree double *v = g_new(double, n + 1);

    for (guint i = 0; i < n; i++) {
        v[i] = field(a, i, f) / field(b, i, f);
    }
    return summarize(v, n);
}

static char *fmt(Summary s, double scale, int prec)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.*f [%.*f–%.*f]", prec, s.median / scale, prec,
                             s.min / scale, prec, s.max / scale);
}

static void json_sum(JsonBuilder *j, const char *key, Summary s)
{
    json_builder_set_member_name(j, key);
    json_builder_add_double_value(j, isnan(s.median) ? -1 : s.median);
}

static gboolean run_guest(Report *r, GuestKind kind, FILE *csv, GError **errp)
{
    const BenchOpts *o = r->opts;
    GuestSpec spec = { kind, "256M", TRUE, kind == GUEST_QTEST };
    const char *gname = guest_kind_name(kind);
    Chain chains[N_VARIANTS] = { { 0 } };
    guint n = 0;
    gboolean ok = FALSE;

    for (guint k = 0; k < N_VARIANTS; k++) {
        Chain *c = &chains[n];
        QemuProcOpts opts;

        if ((bench_transports[variants[k].t].patched_qemu && !*o->qemu) ||
            (variants[k].baseline && !o->baseline_transport_dir)) {
            continue;
        }
        c->v = &variants[k];
        c->dir = g_strdup_printf("%s/outside-%s-%u", bench_shm_base, gname, k);
        c->image = g_strdup_printf("%s/outside-%s-%u.img", bench_shm_base,
                                   gname, k);
        c->uri = bench_uri(c->v->t, c->image);
        c->seen = g_array_new(FALSE, FALSE, sizeof(CprRestoreSeen));
        g_mkdir_with_parents(c->dir, 0700);
        n++;
        c->args = guest_kind_args(&spec, bench_qemu_for(o, c->v->t), c->dir,
                                  errp);
        if (!c->args) {
            goto out;
        }
        set_env(o, c);
        opts = opts_for(o, c);
        c->vm = qemu_proc_start(&opts, errp);
        if (!c->vm) {
            goto out;
        }
    }
    if (kind == GUEST_LINUX) {
        for (guint i = 0; i < n; i++) {
            g_autofree char *serial = g_build_filename(chains[i].dir,
                                                       "serial.log", NULL);

            if (!guest_wait_tick(serial, 1, BOOT_TIMEOUT_MS, NULL, errp)) {
                goto out;
            }
        }
    }
    for (guint i = 0; i < n; i++) {
        if (!run_vm(chains[i].vm, FALSE, errp)) {
            goto out;
        }
    }
    for (guint round = 0; round < o->warmup + o->cycles; round++) {
        fprintf(stderr, "\r  restore-outside %s: round %u/%u   ", gname,
                round + 1, o->warmup + o->cycles);
        for (guint i = 0; i < n; i++) {
            Chain *c = &chains[(i + round) % n];

            if (!cycle(o, c, round >= o->warmup, errp)) {
                g_prefix_error(errp, "%s/%s: ", gname, c->v->name);
                goto out;
            }
        }
    }
    fprintf(stderr, "\n");

    for (guint i = 0; i < n; i++) {
        Chain *c = &chains[i];
        Chain *ref = c->v != &variants[REF] && chains[n - 1].v == &variants[REF]
                     ? &chains[n - 1] : NULL;
        g_autofree char *reply = fmt(col(c, F(reply_us), -1), 1e3, 2);
        g_autofree char *res = fmt(col(c, F(resume_us), -1), 1e3, 2);
        g_autofree char *run = fmt(col(c, F(running_us), -1), 1e3, 2);
        g_autofree char *gap = fmt(col(c, F(running_us), F(resume_us)), 1e3, 2);
        g_autofree char *polls = fmt(col(c, F(polls), -1), 1, 0);
        g_autofree char *rr = ref ? fmt(ratio(c, ref, F(resume_us)), 1, 2)
                                  : g_strdup("1.00");
        g_autofree char *rn = ref ? fmt(ratio(c, ref, F(running_us)), 1, 2)
                                  : g_strdup("1.00");

        g_string_append_printf(r->md,
            "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", gname,
            c->v->name, reply, res, run, gap, polls, rr, rn);
        for (guint k = 0; csv && k < c->seen->len; k++) {
            fprintf(csv, "%s,%s,%u,%.0f,%.0f,%.0f,%.0f\n", gname, c->v->name,
                    k, field(c, k, F(reply_us)), field(c, k, F(resume_us)),
                    field(c, k, F(running_us)), field(c, k, F(polls)));
        }
        json_builder_begin_object(r->json);
        json_builder_set_member_name(r->json, "guest");
        json_builder_add_string_value(r->json, gname);
        json_builder_set_member_name(r->json, "variant");
        json_builder_add_string_value(r->json, c->v->name);
        json_sum(r->json, "resume_us", col(c, F(resume_us), -1));
        json_sum(r->json, "running_us", col(c, F(running_us), -1));
        json_sum(r->json, "running_after_resume_us",
                 col(c, F(running_us), F(resume_us)));
        if (ref) {
            json_sum(r->json, "running_ratio_vs_stock_file",
                     ratio(c, ref, F(running_us)));
        }
        json_builder_end_object(r->json);
    }
    ok = TRUE;
out:
    for (guint i = 0; i < n; i++) {
        Chain *c = &chains[i];

        g_clear_pointer(&c->vm, qemu_proc_free);
        g_unlink(c->image);
        g_free(c->dir);
        g_free(c->image);
        g_free(c->uri);
        g_strfreev(c->args);
        g_array_free(c->seen, TRUE);
    }
    return ok;
}

gboolean bench_restore_outside(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    FILE *csv = bench_csv_open(o, "restore-outside.csv",
        "guest,variant,cycle,reply_us,resume_us,running_us,polls");
    gboolean ok = TRUE;

    plugins = g_strdup(g_getenv("QEMU_TRANSPORT_PLUGIN_DIR"));
    g_string_append_printf(r->md,
        "\n### Restore seen from outside (%u cycles after %u warm-up, "
        "/dev/shm, PMEM_IS_PMEM_FORCE=1, median [min–max] ms)\n\n"
        "From sending `migrate-incoming`: its reply, QEMU's RESUME event "
        "(QEMU's timestamp), and the first `query-status` reply saying "
        "`running` (client's receive time; query-status sent back to back "
        "from the migrate-incoming reply on).  pmem: restores with "
        "`x-preload-transports=pmem`.  \"no room thread\": "
        "CPR_PMEM_NO_ROOM=1 in the restored QEMU's environment, for "
        "attribution only.%s  Ratios are per round against stock "
        "`file:`.\n\n"
        "| guest | transport | reply | RESUME | running | running − RESUME "
        "| polls | RESUME / stock | running / stock |\n"
        "|---|---|---|---|---|---|---|---|---|\n",
        o->cycles, o->warmup,
        o->baseline_transport_dir ? "  \"baseline .so\": the transport from "
        "--baseline-transport, same QEMU." : "");
    json_builder_set_member_name(r->json, "restore_outside");
    json_builder_begin_array(r->json);
    if (o->guest_linux) {
        ok = run_guest(r, GUEST_LINUX, csv, errp);
    }
    if (ok && o->guest_qtest) {
        ok = run_guest(r, GUEST_QTEST, csv, errp);
    }
    json_builder_end_array(r->json);
    if (plugins) {
        g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", plugins, TRUE);
    }
    g_clear_pointer(&plugins, g_free);
    if (csv) {
        fclose(csv);
    }
    return ok;
}
