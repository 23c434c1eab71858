/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pre-stop of a QEMU started normally: the time from sending `migrate`
 * to the STOP event on a VM's first save, when neither the transport nor
 * the image has been touched yet.  In cpr-reboot mode QEMU stops the VM
 * inside the migrate command, right after the transport's out_open: the
 * pre-stop is the command itself (loading the plugin unless
 * x-preload-transports did at start-up, out_open: create the image, map
 * it, record the VM and its RAM binding).
 *
 * N fresh qtest VMs (/dev/shm, PMEM_IS_PMEM_FORCE=1, no image yet) are
 * told to save at once, as cpr-host-update does; then each VM's pre-stop
 * and pause, and the host's blackout (first STOP to last durable commit:
 * every early VM waits for the last one's save before the reboot).
 * QEMU's trace (handle_qmp_command, transport_plugin_open) splits a pmem: pre-stop into the command up to
 * out_open and out_open onwards.
 */
#include "bench.h"
#include "guest-kinds.h"
#include "stats.h"
#include "cpr-cycle.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

typedef struct {
    const char *name;
    TransportId t;
    gboolean preload;
    gboolean create;        /* "cpr-pmem create" the image first */
    gboolean baseline;      /* pmem: from --baseline-transport */
} Variant;

static const Variant all_variants[] = {
    { "pmem", T_PMEM, FALSE, FALSE, FALSE },
    { "pmem, preloaded", T_PMEM, TRUE, FALSE, FALSE },
    { "pmem, image created", T_PMEM, FALSE, TRUE, FALSE },
    { "pmem, preloaded, image created", T_PMEM, TRUE, TRUE, FALSE },
    { "pmem (baseline .so)", T_PMEM, FALSE, FALSE, TRUE },
    { "pmem (baseline .so), preloaded", T_PMEM, TRUE, FALSE, TRUE },
    { "file(patched)", T_FILE_PATCHED, FALSE, FALSE, FALSE },
    { "file(stock)", T_FILE_STOCK, FALSE, FALSE, FALSE },
};
#define N_ALL G_N_ELEMENTS(all_variants)

static const char *const extra_trace[] = {
    "-trace", "handle_qmp_command", "-trace", "transport_plugin_open", NULL,
};

/* Per VM and cycle, µs; NAN where it does not apply. */
typedef struct {
    double pre_stop, pause, to_open, from_open;
} VmTimes;

typedef struct {
    const Variant *v;
    guint n;
    GArray *vms;            /* VmTimes, every VM of every cycle */
    GArray *blackout;       /* double per cycle */
    GArray *spread;         /* last STOP - first STOP, per cycle */
} Row;

static void split_from_log(QemuProc *p, double sent, double stop, VmTimes *vt)
{
    g_autofree char *log = qemu_proc_log(p);
    double cmd = bench_log_time(log, "\"execute\": \"migrate\"", sent - 1000);
    double open = bench_log_time(log, "transport_plugin_open scheme=pmem out",
                                 sent - 1000);

    vt->to_open = open - cmd;
    vt->from_open = stop - open;
}

/* What cpr-host-update does for a VM without an image: a new image's
 * room, allocated, before any VM is told to save. */
static gboolean create_image(const char *img, GError **errp)
{
    const char *argv[] = { BENCH_CPR_PMEM, "create", "--size=8M", img, NULL };
    int status;

    return g_spawn_sync(NULL, (char **)argv, NULL,
                        G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                        &status, errp) &&
           g_spawn_check_wait_status(status, errp);
}

static void set_env(const BenchOpts *o, const Variant *v, const char *plugins)
{
    bench_set_medium_env(MEDIUM_SHM_FORCE);
    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR",
             v->baseline ? o->baseline_transport_dir : plugins, TRUE);
}

static gboolean cycle(const BenchOpts *o, Row *row, const char *plugins,
                      GError **errp)
{
    const Variant *v = row->v;
    guint n = row->n;
    GuestSpec spec = { GUEST_QTEST, o->ram_size, TRUE, TRUE };
    CprSetup setup = { .ignore_shared = TRUE };
    QemuProc **vm = g_new0(QemuProc *, n);
    GStrv *args = g_new0(GStrv, n);
    char **dir = g_new0(char *, n);
    char **img = g_new0(char *, n);
    double *sent = g_new0(double, n);
    double first = INFINITY, last_stop = 0, last = 0, sync = 0;
    gboolean ok = FALSE;

    set_env(o, v, plugins);
    for (guint i = 0; i < n; i++) {
        g_auto(GStrv) base = NULL;
        GPtrArray *a = g_ptr_array_new();
        QemuProcOpts opts;

        dir[i] = g_strdup_printf("%s/pre-stop-%u", bench_shm_base, i);
        img[i] = g_strdup_printf("%s/pre-stop-%u.img", bench_shm_base, i);
        g_mkdir_with_parents(dir[i], 0700);
        g_unlink(img[i]);
        if (v->create && !create_image(img[i], errp)) {
            g_ptr_array_free(a, TRUE);
            goto out;
        }
        base = guest_kind_args(&spec, bench_qemu_for(o, v->t), dir[i], errp);
        if (!base) {
            g_ptr_array_free(a, TRUE);
            goto out;
        }
        for (guint k = 0; base[k]; k++) {
            g_ptr_array_add(a, g_strdup(base[k]));
        }
        for (guint k = 0; bench_transports[v->t].patched_qemu &&
                          extra_trace[k]; k++) {
            g_ptr_array_add(a, g_strdup(extra_trace[k]));
        }
        if (v->preload) {
            g_ptr_array_add(a, g_strdup("-global"));
            g_ptr_array_add(a, g_strdup("migration.x-preload-transports=pmem"));
        }
        g_ptr_array_add(a, NULL);
        args[i] = (GStrv)g_ptr_array_free(a, FALSE);
        opts = (QemuProcOpts){ .binary = bench_qemu_for(o, v->t),
                               .args = (const char *const *)args[i],
                               .dir = dir[i], .name = "vm", .qtest = TRUE,
                               .timeout_ms = 60000 };
        vm[i] = qemu_proc_start(&opts, errp);
        if (!vm[i] || !cpr_setup(qemu_proc_qmp(vm[i]), &setup, errp)) {
            goto out;
        }
    }
    g_usleep(50000);    /* start-up settles: every TCG guest halts */
    for (guint i = 0; i < n; i++) {
        g_autoptr(JsonObject) a = json_object_new();
        g_autofree char *uri = bench_uri(v->t, img[i]);

        json_object_set_string_member(a, "uri", uri);
        sent[i] = g_get_real_time();
        if (!qmp_send(qemu_proc_qmp(vm[i]), "migrate", a, errp)) {
            goto out;
        }
    }
    for (guint i = 0; i < n; i++) {
        JsonNode *ret = qmp_receive(qemu_proc_qmp(vm[i]), "migrate", errp);

        if (!ret) {
            qemu_proc_add_log_to_error(vm[i], errp);
            goto out;
        }
        json_node_unref(ret);
    }
    for (guint i = 0; i < n; i++) {
        CprSample s;
        VmTimes vt = { NAN, NAN, NAN, NAN };
        double stop, done;

        cpr_sample_clear(&s);
        if (!cpr_save_finish(vm[i], &s, &stop, &done, errp)) {
            goto out;
        }
        vt.pre_stop = stop - sent[i];
        vt.pause = done - stop;
        if (v->t == T_PMEM) {
            split_from_log(vm[i], sent[i], stop, &vt);
        }
        g_array_append_val(row->vms, vt);
        first = MIN(first, stop);
        last_stop = MAX(last_stop, stop);
        last = MAX(last, done);
    }
    if (v->t != T_PMEM) {
        for (guint i = 0; i < n; i++) {
            sync += bench_fdatasync_us(img[i]);
        }
    }
    {
        double b = last - first + sync, sp = last_stop - first;

        g_array_append_val(row->blackout, b);
        g_array_append_val(row->spread, sp);
    }
    ok = TRUE;
out:
    for (guint i = 0; i < n; i++) {
        g_clear_pointer(&vm[i], qemu_proc_free);
        if (img[i]) {
            g_unlink(img[i]);
        }
        g_free(img[i]);
        g_free(dir[i]);
        g_strfreev(args[i]);
    }
    g_free(vm);
    g_free(args);
    g_free(dir);
    g_free(img);
    g_free(sent);
    return ok;
}

static Summary vm_col(const Row *r, size_t off)
{
    g_autofree double *v = g_new(double, r->vms->len + 1);

    for (guint i = 0; i < r->vms->len; i++) {
        v[i] = *(const double *)((const char *)&g_array_index(r->vms, VmTimes, i)
                                 + off);
    }
    return summarize(v, r->vms->len);
}

static char *fmt(Summary s, double scale, int prec)
{
    return isnan(s.median) ? g_strdup("-")
           : g_strdup_printf("%.*f [%.*f–%.*f]", prec, s.median / scale, prec,
                             s.min / scale, prec, s.max / scale);
}

static Summary ratio(const Row *a, const Row *b)
{
    guint n = MIN(a->blackout->len, b->blackout->len);
    g_autofree double *v = g_new(double, n + 1);

    for (guint i = 0; i < n; i++) {
        v[i] = g_array_index(a->blackout, double, i) /
               g_array_index(b->blackout, double, i);
    }
    return summarize(v, n);
}

gboolean bench_pre_stop(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    g_autofree char *plugins = g_strdup(g_getenv("QEMU_TRANSPORT_PLUGIN_DIR"));
    FILE *csv = bench_csv_open(o, "pre-stop.csv",
        "n,variant,cycle,vm,pre_stop_us,pause_us,to_out_open_us,"
        "out_open_to_stop_us");
    g_autoptr(GPtrArray) rows = g_ptr_array_new();
    const Variant *vars[N_ALL];
    guint nv = 0;
    gboolean ok = FALSE;

    for (guint k = 0; k < N_ALL; k++) {
        const Variant *v = &all_variants[k];

        if ((bench_transports[v->t].patched_qemu && !*o->qemu) ||
            (v->baseline && !o->baseline_transport_dir)) {
            continue;
        }
        vars[nv++] = v;
    }
    g_string_append_printf(r->md,
        "\n### Pre-stop of a QEMU started normally: its first save "
        "(%u cycles, qtest VMs with %s, /dev/shm, PMEM_IS_PMEM_FORCE=1, "
        "no image yet; median [min–max])\n\n"
        "pre-stop = `migrate` sent → STOP event (in cpr-reboot mode QEMU "
        "stops the VM inside the command, after the transport's "
        "`out_open`); the N VMs get their `migrate` at once.  "
        "to out_open = QEMU's trace `handle_qmp_command` → "
        "`transport_plugin_open` (QMP, checks, and loading the plugin unless "
        "preloaded); out_open → STOP = the transport's `out_open` and QEMU "
        "stopping the VM.  blackout = first STOP → last `completed` (+ the "
        "fdatasync()s for file:); spread = first STOP → last STOP.  "
        "blackout / stock is per round.%s\n\n"
        "| N | transport | pre-stop ms | to out_open ms | out_open → STOP ms "
        "| pause ms | spread ms | blackout ms | blackout / stock |\n"
        "|---|---|---|---|---|---|---|---|---|\n",
        o->cycles, o->ram_size,
        o->baseline_transport_dir ? "  \"baseline .so\": the transport "
        "from --baseline-transport, same QEMU." : "");
    json_builder_set_member_name(r->json, "pre_stop");
    json_builder_begin_array(r->json);
    for (guint k = 0; k < o->scale_n->len; k++) {
        guint n = g_array_index(o->scale_n, guint, k);
        Row *rs = g_new0(Row, nv);

        if (n > 4) {        /* N fresh QEMUs per cycle and variant */
            g_free(rs);
            continue;
        }
        for (guint j = 0; j < nv; j++) {
            rs[j].v = vars[j];
            rs[j].n = n;
            rs[j].vms = g_array_new(FALSE, FALSE, sizeof(VmTimes));
            rs[j].blackout = g_array_new(FALSE, FALSE, sizeof(double));
            rs[j].spread = g_array_new(FALSE, FALSE, sizeof(double));
            g_ptr_array_add(rows, &rs[j]);
        }
        for (guint c = 0; c < o->warmup + o->cycles; c++) {
            fprintf(stderr, "\r  pre-stop: N=%u round %u/%u   ", n, c + 1,
                    o->warmup + o->cycles);
            for (guint j = 0; j < nv; j++) {
                Row *row = &rs[(j + c) % nv];

                if (!cycle(o, row, plugins, errp)) {
                    g_prefix_error(errp, "pre-stop N=%u %s: ", n, row->v->name);
                    goto out;
                }
                if (c < o->warmup) {     /* drop the warm-up cycle */
                    g_array_set_size(row->vms, 0);
                    g_array_set_size(row->blackout, 0);
                    g_array_set_size(row->spread, 0);
                }
            }
        }
        fprintf(stderr, "\n");
        for (guint j = 0; j < nv; j++) {
            Row *row = &rs[j];
            Row *ref = &rs[nv - 1];
            g_autofree char *pre = fmt(vm_col(row, G_STRUCT_OFFSET(VmTimes, pre_stop)), 1e3, 2);
            g_autofree char *to = fmt(vm_col(row, G_STRUCT_OFFSET(VmTimes, to_open)), 1e3, 2);
            g_autofree char *from = fmt(vm_col(row, G_STRUCT_OFFSET(VmTimes, from_open)), 1e3, 2);
            g_autofree char *pause = fmt(vm_col(row, G_STRUCT_OFFSET(VmTimes, pause)), 1e3, 2);
            g_autofree char *spread = fmt(summarize((double *)row->spread->data,
                                                    row->spread->len), 1e3, 2);
            Summary bs = summarize((double *)row->blackout->data,
                                   row->blackout->len);
            g_autofree char *bl = fmt(bs, 1e3, 2);
            g_autofree char *rt = ref->v->t == T_FILE_STOCK
                                  ? fmt(ratio(row, ref), 1, 2) : g_strdup("-");

            g_string_append_printf(r->md,
                "| %u | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
                row->v->name, pre, to, from, pause, spread, bl, rt);
            for (guint i = 0; csv && i < row->vms->len; i++) {
                VmTimes *vt = &g_array_index(row->vms, VmTimes, i);

                fprintf(csv, "%u,%s,%u,%u,%.0f,%.0f,%.0f,%.0f\n", n,
                        row->v->name, i / n, i % n, vt->pre_stop, vt->pause,
                        vt->to_open, vt->from_open);
            }
            json_builder_begin_object(r->json);
            json_builder_set_member_name(r->json, "n");
            json_builder_add_int_value(r->json, n);
            json_builder_set_member_name(r->json, "variant");
            json_builder_add_string_value(r->json, row->v->name);
            json_builder_set_member_name(r->json, "pre_stop_us");
            json_builder_add_double_value(r->json,
                vm_col(row, G_STRUCT_OFFSET(VmTimes, pre_stop)).median);
            json_builder_set_member_name(r->json, "blackout_us");
            json_builder_add_double_value(r->json, bs.median);
            json_builder_end_object(r->json);
        }
    }
    ok = TRUE;
out:
    json_builder_end_array(r->json);
    for (guint i = 0; i < rows->len; i++) {
        Row *row = rows->pdata[i];

        g_array_free(row->vms, TRUE);
        g_array_free(row->blackout, TRUE);
        g_array_free(row->spread, TRUE);
    }
    /* the Row arrays, one per N: their first elements */
    for (guint i = 0; i < rows->len; i += nv) {
        g_free(rows->pdata[i]);
    }
    if (plugins) {
        g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", plugins, TRUE);
    }
    if (csv) {
        fclose(csv);
    }
    return ok;
}
