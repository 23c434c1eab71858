/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-preload: what -global migration.x-preload-transports=pmem saves.
 *
 *   cpr-preload [CYCLES]     (default 11; QEMU from $CPR_QEMU)
 *
 * Each cycle, once with and once without the property (alternating which
 * goes first): a fresh qtest QEMU makes its first save to pmem: (time from
 * sending "migrate" to the STOP event), then a fresh QEMU with -incoming
 * defer restores it (time from sending "migrate-incoming" to the RESUME
 * event).  Event timestamps are QEMU's gettimeofday(), the same clock as
 * the send times.  Prints a markdown table of medians with min and max.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <stdio.h>
#include <stdlib.h>

#define RAM_SIZE   "256M"
#define MAX_CYCLES 101

static double event_us(JsonObject *ev)
{
    JsonObject *ts = json_object_get_object_member(ev, "timestamp");

    return json_object_get_int_member(ts, "seconds") * 1e6 +
           json_object_get_int_member(ts, "microseconds");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void row(const char *what, double *v, int n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    printf("| %s | %.0f | %.0f | %.0f |\n", what,
           n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]);
}

/* Microseconds from sending @cmd to the event @ev, or abort. */
static double timed(QemuProc *p, const char *cmd, const char *uri,
                    const char *ev)
{
    g_autoptr(JsonObject) args = json_object_new();
    g_autoptr(JsonObject) e = NULL;
    GError *err = NULL;
    double sent;

    json_object_set_string_member(args, "uri", uri);
    sent = g_get_real_time();
    if (!qmp_run(qemu_proc_qmp(p), cmd, args, &err) ||
        !(e = qmp_wait_event(qemu_proc_qmp(p), ev, 60000, &err))) {
        qemu_proc_add_log_to_error(p, &err);
        g_error("%s: %s", cmd, err->message);
    }
    return event_us(e) - sent;
}

static void check(QemuProc *p, GError *err)
{
    if (err) {
        if (p) {
            qemu_proc_add_log_to_error(p, &err);
        }
        g_error("%s", err->message);
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 11;
    g_autofree char *dir = NULL, *uri = NULL;
    g_auto(GStrv) plain = NULL, preload = NULL;
    static double save[2][MAX_CYCLES], restore[2][MAX_CYCLES];

    if (n < 1 || n > MAX_CYCLES) {
        fprintf(stderr, "usage: cpr-preload [CYCLES (1-%d)]\n", MAX_CYCLES);
        return 2;
    }
    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", BENCH_TRANSPORT_DIR, FALSE);
    g_setenv("PMEM_IS_PMEM_FORCE", "1", FALSE);
    dir = test_env_mkdtemp(TEST_BASE_SHM);
    uri = g_strdup_printf("pmem:%s/vm.cpr", dir);
    plain = halt_vm_args(dir, "ram", RAM_SIZE);
    preload = cpr_preload_args((const char *const *)plain, uri);

    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 2; j++) {
            int k = i % 2 ? 1 - j : j;      /* 1: with the property */
            QemuProcOpts o = {
                .binary = test_env_qemu(), .dir = dir, .qtest = TRUE,
                .name = k ? "preload" : "plain",
                .args = (const char *const *)(k ? preload : plain),
            };
            g_autoptr(QemuProc) src = NULL, dst = NULL;
            GError *err = NULL;

            src = qemu_proc_start(&o, &err);
            check(src, err);
            cpr_setup(qemu_proc_qmp(src), CPR_SETUP_SHARED, &err);
            check(src, err);
            save[k][i] = timed(src, "migrate", uri, "STOP");
            qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
            check(src, err);
            g_clear_pointer(&src, qemu_proc_free);

            dst = qemu_proc_start_incoming(&o, "defer", &err);
            check(dst, err);
            cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
            check(dst, err);
            restore[k][i] = timed(dst, "migrate-incoming", uri, "RESUME");
        }
    }

    printf("%d cycles, qtest guest with %s of RAM, pmem: on /dev/shm "
           "(PMEM_IS_PMEM_FORCE=%s), times in µs\n\n",
           n, RAM_SIZE, g_getenv("PMEM_IS_PMEM_FORCE"));
    printf("| measure | median | min | max |\n|---|---|---|---|\n");
    row("first save, `migrate` → STOP, no preload", save[0], n);
    row("first save, `migrate` → STOP, x-preload-transports=pmem", save[1], n);
    row("restore, `migrate-incoming` → RESUME, no preload", restore[0], n);
    row("restore, `migrate-incoming` → RESUME, x-preload-transports=pmem",
        restore[1], n);
    test_env_rmtree(dir);
    return 0;
}
