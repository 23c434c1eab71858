/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One QEMU process under test: spawned with a QMP socket (and optionally a
 * qtest socket) in a work directory, stdout+stderr captured to a log whose
 * text ends up in error messages.  Killed on free, and by the kernel if the
 * test process dies, so no QEMU outlives its test.
 */
#ifndef HARNESS_QEMU_PROC_H
#define HARNESS_QEMU_PROC_H

#include "qmp.h"
#include "qtest.h"

typedef struct QemuProc QemuProc;

typedef struct {
    const char *binary;          /* qemu-system-x86_64 to run */
    const char *const *args;     /* NULL-terminated extra arguments */
    const char *dir;             /* sockets and log go here */
    const char *name;            /* file prefix, e.g. "src" */
    gboolean qtest;              /* add -qtest and connect a Qtest client */
    guint timeout_ms;            /* start-up deadline, 0 = 30 s */
} QemuProcOpts;

QemuProc *qemu_proc_start(const QemuProcOpts *opts, GError **errp);
/* The same with "-incoming @incoming" appended ("defer", or a URI). */
QemuProc *qemu_proc_start_incoming(const QemuProcOpts *opts,
                                   const char *incoming, GError **errp);
/* Kill (if still running) and release. */
void qemu_proc_free(QemuProc *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuProc, qemu_proc_free)

Qmp *qemu_proc_qmp(QemuProc *p);
Qtest *qemu_proc_qtest(QemuProc *p);           /* NULL without opts.qtest */
const QemuProcOpts *qemu_proc_opts(QemuProc *p);  /* as started, deep copy */

/* Microseconds from spawn to a negotiated QMP connection. */
gint64 qemu_proc_qmp_ready_us(QemuProc *p);

/* Wait for exit; @status gets the exit code (128+signal if killed). */
gboolean qemu_proc_wait(QemuProc *p, guint timeout_ms, int *status,
                        GError **errp);
gboolean qemu_proc_running(QemuProc *p);
void qemu_proc_kill(QemuProc *p);

/* Captured stdout+stderr so far. */
char *qemu_proc_log(QemuProc *p);
/* Prefix *errp with the process name and append the log's tail. */
void qemu_proc_add_log_to_error(QemuProc *p, GError **errp);

#endif
