/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One cpr-reboot cycle: save a running QEMU's device state to a URI
 * (file:... with stock QEMU, pmem:... with the patched one), quit it, start
 * a fresh QEMU with -incoming defer and restore.  Guest RAM is on a shared
 * memory-backend-file and skipped via x-ignore-shared.
 */
#ifndef HARNESS_CPR_CYCLE_H
#define HARNESS_CPR_CYCLE_H

#include "qemu-proc.h"

typedef struct {
    /* save side */
    gint64 migrate_us;         /* "migrate" sent → query-migrate "completed" */
    gint64 qemu_total_ms;      /* query-migrate total-time, -1 if absent */
    gint64 qemu_downtime_ms;   /* query-migrate downtime, -1 if absent */
    gint64 quit_us;            /* "quit" sent → process exited */
    /* restore side */
    gint64 dst_qmp_ready_us;   /* spawn → QMP negotiated */
    gint64 incoming_us;        /* "migrate-incoming" sent → status "running" */
} CprTimes;

/* Save @src to @uri and make it exit.  @src stays owned by the caller. */
gboolean cpr_save(QemuProc *src, const char *uri, CprTimes *times,
                  GError **errp);

/*
 * Start @opts plus "-incoming defer", restore from @uri and wait until the
 * guest runs.  Returns the new process.
 */
QemuProc *cpr_restore(const QemuProcOpts *opts, const char *uri,
                      CprTimes *times, GError **errp);

/* cpr_save then cpr_restore with @src's own options, named @dst_name. */
QemuProc *cpr_cycle(QemuProc *src, const char *uri, const char *dst_name,
                    CprTimes *times, GError **errp);

#endif
