/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host blackout before one host reboot: N qtest VMs (idle vCPUs, so the
 * saves get the CPUs) are told to save at once; blackout is the first STOP
 * to the last durable commit.  For file: "durable" means the fdatasync()s
 * issued after the last "completed".
 *
 * The VMs are in the state of every reboot after the first: restored from
 * the last one's images (started with x-preload-transports, so the
 * transport was loaded before the save) and
 * saving into those images again.  A first save ever also creates the
 * image and loads the transport inside the migrate command.
 */
#include "bench.h"
#include "guest-kinds.h"
#include "cpr-cycle.h"

#include <glib/gstdio.h>
#include <math.h>

static const TransportId scale_transports[] = { T_PMEM, T_FILE_STOCK };

/* Blackout in µs for @n VMs with @t, or NAN with *errp set. */
static double blackout(const BenchOpts *o, TransportId t, guint n, GError **errp)
{
    GuestSpec spec = { GUEST_QTEST, "64M", TRUE, TRUE };
    CprSetup setup = { .ignore_shared = TRUE };
    QemuProc **vm = g_new0(QemuProc *, n);
    char **dir = g_new0(char *, n);
    char **img = g_new0(char *, n);
    double first = INFINITY, last = 0, result = NAN;

    bench_set_medium_env(MEDIUM_SHM_FORCE);
    for (guint i = 0; i < n; i++) {
        g_auto(GStrv) args = NULL;
        g_autofree char *uri = NULL;
        QemuProcOpts opts;
        CprSample s;

        dir[i] = g_strdup_printf("%s/scale-%u", bench_shm_base, i);
        img[i] = g_strdup_printf("%s/scale-%u.img", bench_shm_base, i);
        uri = bench_uri(t, img[i]);
        g_mkdir_with_parents(dir[i], 0700);
        args = guest_kind_args(&spec, bench_qemu_for(o, t), dir[i], errp);
        if (!args) {
            goto out;
        }
        opts = (QemuProcOpts){ .binary = bench_qemu_for(o, t),
                               .args = (const char *const *)args, .dir = dir[i],
                               .name = "vm", .qtest = TRUE, .timeout_ms = 60000 };
        vm[i] = qemu_proc_start(&opts, errp);
        if (!vm[i] || !cpr_save(vm[i], &setup, uri, &s, errp)) {
            goto out;
        }
        g_clear_pointer(&vm[i], qemu_proc_free);
        vm[i] = cpr_restore(&opts, &setup, uri, &s, errp);
        if (!vm[i]) {
            goto out;
        }
    }
    /* All at once, as a host shutdown would: no VM waits for another's
     * migrate command to return before it is told. */
    for (guint i = 0; i < n; i++) {
        g_autoptr(JsonObject) args = json_object_new();
        g_autofree char *uri = bench_uri(t, img[i]);

        json_object_set_string_member(args, "uri", uri);
        if (!qmp_send(qemu_proc_qmp(vm[i]), "migrate", args, errp)) {
            goto out;
        }
    }
    for (guint i = 0; i < n; i++) {
        JsonNode *ret = qmp_receive(qemu_proc_qmp(vm[i]), "migrate", errp);

        if (!ret) {
            goto out;
        }
        json_node_unref(ret);
    }
    for (guint i = 0; i < n; i++) {
        CprSample s;
        double stop, done;

        if (!cpr_save_finish(vm[i], &s, &stop, &done, errp)) {
            goto out;
        }
        first = MIN(first, stop);
        last = MAX(last, done);
    }
    result = last - first;
    if (t != T_PMEM) {
        for (guint i = 0; i < n; i++) {
            result += bench_fdatasync_us(img[i]);
        }
    }
out:
    for (guint i = 0; i < n; i++) {
        g_clear_pointer(&vm[i], qemu_proc_free);
        if (img[i]) {
            g_unlink(img[i]);
        }
        g_free(img[i]);
        g_free(dir[i]);
    }
    g_free(vm);
    g_free(dir);
    g_free(img);
    return result;
}

gboolean bench_scale(Report *r, GError **errp)
{
    const BenchOpts *o = r->opts;
    FILE *csv = bench_csv_open(o, "scale.csv",
                               "transport,n,blackout_us,per_vm_us,bound_ratio");
    double base[G_N_ELEMENTS(scale_transports)] = { 0 };
    gboolean ok = FALSE;

    g_string_append_printf(r->md,
        "\n### Host blackout: N qtest VMs (64 MiB, device set) saved "
        "concurrently to /dev/shm (pmem with PMEM_IS_PMEM_FORCE=1), each "
        "restored from its previous image first, as on every reboot after "
        "the first\n\n"
        "blackout = first STOP → last durable commit (pmem: last "
        "`completed`; stock file: last `completed` + the N fdatasync()s). "
        "bound = blackout / (blackout(N=1) × max(1, N/%u cores)); ≤ 1 means "
        "the per-VM cost stays within the cores' share.\n\n"
        "| N | transport | blackout ms | per VM ms | bound |\n|---|---|---|---|---|\n",
        o->cores);
    json_builder_set_member_name(r->json, "scale");
    json_builder_begin_array(r->json);
    for (guint k = 0; k < o->scale_n->len; k++) {
        guint n = g_array_index(o->scale_n, guint, k);

        /* alternate transports at every N */
        for (guint ti = 0; ti < G_N_ELEMENTS(scale_transports); ti++) {
            TransportId t = scale_transports[ti];
            double b, bound;

            if (bench_transports[t].patched_qemu && !*o->qemu) {
                continue;
            }
            fprintf(stderr, "  scale: N=%u %s\n", n, bench_transports[t].name);
            b = blackout(o, t, n, errp);
            if (isnan(b)) {
                goto out;
            }
            if (!base[ti]) {
                base[ti] = b * 1.0 / MAX(1.0, (double)n / o->cores);
            }
            bound = b / (base[ti] * MAX(1.0, (double)n / o->cores));
            g_string_append_printf(r->md, "| %u | %s | %.2f | %.3f | %.2f |\n",
                                   n, bench_transports[t].name, b / 1e3,
                                   b / 1e3 / n, bound);
            if (csv) {
                fprintf(csv, "%s,%u,%.0f,%.0f,%.3f\n", bench_transports[t].name,
                        n, b, b / n, bound);
            }
            json_builder_begin_object(r->json);
            json_builder_set_member_name(r->json, "transport");
            json_builder_add_string_value(r->json, bench_transports[t].name);
            json_builder_set_member_name(r->json, "n");
            json_builder_add_int_value(r->json, n);
            json_builder_set_member_name(r->json, "blackout_us");
            json_builder_add_double_value(r->json, b);
            json_builder_set_member_name(r->json, "bound_ratio");
            json_builder_add_double_value(r->json, bound);
            json_builder_end_object(r->json);
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
