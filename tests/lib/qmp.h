/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Minimal synchronous QMP client: one command in flight, events queued
 * while waiting for replies.  Every blocking call has a deadline so a
 * wedged QEMU fails a test instead of hanging it.
 */
#ifndef HARNESS_QMP_H
#define HARNESS_QMP_H

#include <glib.h>
#include <json-glib/json-glib.h>

#define QMP_ERROR (qmp_error_quark())
GQuark qmp_error_quark(void);

/* Transport failures are G_IO_ERROR (TIMED_OUT, CONNECTION_CLOSED, ...). */
typedef enum {
    QMP_ERROR_PROTOCOL,  /* unparsable or unexpected message */
    QMP_ERROR_COMMAND,   /* QEMU answered {"error": ...}; message is "Class: desc" */
    QMP_ERROR_MIGRATION, /* migration reached failed/cancelled */
} QmpError;

typedef struct Qmp Qmp;

/* Read the greeting on a connected socket and negotiate capabilities. */
Qmp *qmp_new(GSocket *sock, guint timeout_ms, GError **errp);
/* Connect to a listening QMP socket (retrying until it exists), then qmp_new. */
Qmp *qmp_connect(const char *path, guint timeout_ms, GError **errp);
void qmp_free(Qmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Qmp, qmp_free)

/* Per-command deadline (default 30 s). */
void qmp_set_timeout(Qmp *qmp, guint timeout_ms);

/* Run @cmd with optional @args; returns the "return" member (unref it). */
JsonNode *qmp_execute(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp);
/*
 * qmp_execute in two halves, so that several QEMUs can be sent a command
 * before any reply is awaited; @cmd only names it in errors.
 */
gboolean qmp_send(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp);
JsonNode *qmp_receive(Qmp *qmp, const char *cmd, GError **errp);
/* Same, discarding the return value. */
gboolean qmp_run(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp);
/* The JSON object @text, for arguments written out in a test; NULL if
 * @text is NULL or not an object. */
JsonObject *qmp_args(const char *text);

/* Pop the first queued or arriving event called @name; returns the whole message. */
JsonObject *qmp_wait_event(Qmp *qmp, const char *name, guint timeout_ms, GError **errp);

gboolean qmp_set_capability(Qmp *qmp, const char *cap, gboolean on, GError **errp);
gboolean qmp_set_parameter(Qmp *qmp, const char *param, const char *value, GError **errp);
gboolean qmp_migrate(Qmp *qmp, const char *uri, GError **errp);
gboolean qmp_migrate_incoming(Qmp *qmp, const char *uri, GError **errp);

/*
 * Poll query-migrate until "completed"; on success optionally hand back the
 * final query-migrate object.  failed/cancelled give QMP_ERROR_MIGRATION
 * with QEMU's error-desc.
 */
gboolean qmp_wait_migration(Qmp *qmp, guint timeout_ms, JsonObject **info,
                            GError **errp);

/* query-status "status" member, e.g. "running", "inmigrate", "postmigrate". */
char *qmp_query_status(Qmp *qmp, GError **errp);
gboolean qmp_wait_status(Qmp *qmp, const char *status, guint timeout_ms,
                         GError **errp);

/* Send "quit"; tolerates QEMU closing the socket before replying. */
gboolean qmp_quit(Qmp *qmp, GError **errp);

#endif
