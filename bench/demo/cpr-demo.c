/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The main job on its embedded default: boot the tick guest with RAM on a
 * shared file in /dev/shm, do one cpr-reboot cycle through pmem: (patched
 * QEMU) and one through file: (stock QEMU 10.0) in the same directory,
 * check the guest's counter carried on, and print pause and restore times.
 *
 *   cpr-demo [PATCHED_QEMU [STOCK_QEMU]]
 */
#include "guest.h"
#include "test-env.h"
#include "cpr-cycle.h"

#include <stdio.h>
#include <stdlib.h>

#define BOOT_TIMEOUT_MS 120000
#define TICKS_BEFORE    5
#define TICKS_AFTER     5

typedef struct {
    const char *label;
    const char *qemu;
    const char *scheme;
    const char *durability;
    CprSample t;
    guint last_before, first_after;
} Run;

static gboolean run_cycle(Run *r, const char *dir, GError **errp)
{
    g_autofree char *ram = g_strdup_printf("%s/ram-%s", dir, r->scheme);
    g_autofree char *serial = g_strdup_printf("%s/serial-%s.log", dir, r->scheme);
    g_autofree char *uri = g_strdup_printf("%s:%s/vm.%s", r->scheme, dir, r->scheme);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(GArray) before = NULL;
    g_autoptr(GArray) all = NULL;
    QemuProcOpts opts = { .binary = r->qemu, .dir = dir };
    CprSetup setup = { .ignore_shared = TRUE };

    args = guest_args(guest_accel(r->qemu), ram, serial, errp);
    if (!args) {
        return FALSE;
    }
    opts.args = (const char *const *)args;
    opts.name = r->scheme;
    cpr_sample_clear(&r->t);
    src = qemu_proc_start(&opts, errp);
    if (!src || !guest_wait_tick(serial, TICKS_BEFORE, BOOT_TIMEOUT_MS, NULL, errp) ||
        !cpr_save(src, &setup, uri, &r->t, errp)) {
        return FALSE;
    }
    before = guest_ticks(serial);
    r->last_before = g_array_index(before, guint, before->len - 1);

    dst = cpr_restore(&opts, &setup, uri, &r->t, errp);
    if (!dst || !guest_wait_tick(serial, r->last_before + TICKS_AFTER, 30000,
                                 NULL, errp)) {
        return FALSE;
    }
    all = guest_ticks(serial);
    r->first_after = g_array_index(all, guint, before->len);
    if (r->first_after != r->last_before + 1) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s: guest counter jumped from %u to %u", r->label,
                    r->last_before, r->first_after);
        return FALSE;
    }
    return TRUE;
}

int main(int argc, char **argv)
{
    Run runs[] = {
        { .label = "pmem: (patched QEMU)", .scheme = "pmem",
          .qemu = argc > 1 ? argv[1] : NULL,
          .durability = "durable and published" },
        { .label = "file: (stock QEMU)", .scheme = "file",
          .qemu = argc > 2 ? argv[2] : test_env_qemu(),
          .durability = "in page cache, no fsync" },
    };
    g_autofree char *dir = NULL;
    GError *err = NULL;

    if (!runs[0].qemu) {
        fprintf(stderr, "usage: %s PATCHED_QEMU [STOCK_QEMU]\n", argv[0]);
        return 2;
    }
    /* The shm image takes libpmem's cache-flush path, as on real pmem. */
    g_setenv("PMEM_IS_PMEM_FORCE", "1", TRUE);
    dir = test_env_mkdtemp(TEST_BASE_SHM);
    printf("guest: Linux tick counter, RAM on %s (shared), accel %s\n", dir,
           guest_accel(runs[0].qemu));

    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        Run *r = &runs[i];

        if (!run_cycle(r, dir, &err)) {
            fprintf(stderr, "cpr-demo: %s: %s\n", r->label, err->message);
            fprintf(stderr, "cpr-demo: files kept in %s\n", dir);
            g_error_free(err);
            return 1;
        }
        printf("%-22s counter %u -> %u after restore\n", r->label,
               r->last_before, r->first_after);
    }

    printf("\n%-22s %10s %12s %12s %14s  %s\n", "transport", "pause ms",
           "downtime ms", "restore ms", "dst start ms", "at completed");
    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        const Run *r = &runs[i];

        printf("%-22s %10.2f %12.0f %12.2f %14.1f  %s\n", r->label,
               r->t.pause_us / 1e3, r->t.downtime_us / 1e3,
               r->t.incoming_us / 1e3, r->t.qmp_ready_us / 1e3,
               r->durability);
    }
    printf("\npause: QMP STOP -> MIGRATION completed; restore: "
           "migrate-incoming -> RESUME (pmem: includes verifying the "
           "image); QEMU's own event timestamps\n");
    test_env_rmtree(dir);
    return 0;
}
