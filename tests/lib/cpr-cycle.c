/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cpr-cycle.h"

#define MIGRATE_TIMEOUT_MS 60000
#define QUIT_TIMEOUT_MS    30000

/* Both sides need the same setup: cpr-reboot is checked on the destination too. */
static gboolean setup_cpr_reboot(Qmp *qmp, GError **errp)
{
    return qmp_set_capability(qmp, "x-ignore-shared", TRUE, errp) &&
           qmp_set_parameter(qmp, "mode", "cpr-reboot", errp);
}

static gint64 int_member(JsonObject *obj, const char *name)
{
    return json_object_has_member(obj, name)
           ? json_object_get_int_member(obj, name) : -1;
}

gboolean cpr_save(QemuProc *src, const char *uri, CprTimes *times,
                  GError **errp)
{
    Qmp *qmp = qemu_proc_qmp(src);
    g_autoptr(JsonObject) info = NULL;
    gint64 t0;
    int status;

    if (!setup_cpr_reboot(qmp, errp)) {
        goto fail;
    }
    t0 = g_get_monotonic_time();
    if (!qmp_migrate(qmp, uri, errp) ||
        !qmp_wait_migration(qmp, MIGRATE_TIMEOUT_MS, &info, errp)) {
        goto fail;
    }
    times->migrate_us = g_get_monotonic_time() - t0;
    times->qemu_total_ms = int_member(info, "total-time");
    times->qemu_downtime_ms = int_member(info, "downtime");

    t0 = g_get_monotonic_time();
    if (!qmp_quit(qmp, errp) ||
        !qemu_proc_wait(src, QUIT_TIMEOUT_MS, &status, errp)) {
        goto fail;
    }
    times->quit_us = g_get_monotonic_time() - t0;
    if (status != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "QEMU exited with status %d after quit", status);
        goto fail;
    }
    return TRUE;

fail:
    qemu_proc_add_log_to_error(src, errp);
    return FALSE;
}

QemuProc *cpr_restore(const QemuProcOpts *opts, const char *uri,
                      CprTimes *times, GError **errp)
{
    g_autoptr(QemuProc) dst = NULL;
    Qmp *qmp;
    gint64 t0;

    dst = qemu_proc_start_incoming(opts, "defer", errp);
    if (!dst) {
        return NULL;
    }
    times->dst_qmp_ready_us = qemu_proc_qmp_ready_us(dst);
    qmp = qemu_proc_qmp(dst);
    if (!setup_cpr_reboot(qmp, errp)) {
        qemu_proc_add_log_to_error(dst, errp);
        return NULL;
    }
    t0 = g_get_monotonic_time();
    if (!qmp_migrate_incoming(qmp, uri, errp) ||
        !qmp_wait_status(qmp, "running", MIGRATE_TIMEOUT_MS, errp)) {
        /* A failed load leaves QEMU's reason in its log. */
        qemu_proc_add_log_to_error(dst, errp);
        return NULL;
    }
    times->incoming_us = g_get_monotonic_time() - t0;
    return g_steal_pointer(&dst);
}

QemuProc *cpr_cycle(QemuProc *src, const char *uri, const char *dst_name,
                    CprTimes *times, GError **errp)
{
    QemuProcOpts opts = *qemu_proc_opts(src);

    if (!cpr_save(src, uri, times, errp)) {
        return NULL;
    }
    opts.name = dst_name;
    return cpr_restore(&opts, uri, times, errp);
}
