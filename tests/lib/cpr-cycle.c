/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cpr-cycle.h"
#include "line-socket.h"
#include "qemu-log.h"

#include <math.h>
#include <string.h>

#define MIGRATE_TIMEOUT_MS 120000   /* a 4 GiB save into a new file */
#define QUIT_TIMEOUT_MS    30000
#define MAX_BANDWIDTH      (G_GINT64_CONSTANT(1) << 40)   /* 1 TiB/s */

const char *const cpr_trace_args[] = {
    "-trace", "vmstate_downtime_checkpoint", "-msg", "timestamp=on", NULL,
};

void cpr_sample_clear(CprSample *s)
{
    double *f = (double *)s;

    for (size_t i = 0; i < sizeof(*s) / sizeof(double); i++) {
        f[i] = NAN;
    }
}

static gboolean set_cap(Qmp *qmp, const char *cap, gboolean on, GError **errp)
{
    return qmp_set_capability(qmp, cap, on, errp);
}

gboolean cpr_setup(Qmp *qmp, const CprSetup *setup, GError **errp)
{
    g_autoptr(JsonObject) args = json_object_new();

    json_object_set_int_member(args, "max-bandwidth", MAX_BANDWIDTH);
    if (setup->multifd_channels) {
        json_object_set_int_member(args, "multifd-channels",
                                   setup->multifd_channels);
    }
    return set_cap(qmp, "x-ignore-shared", setup->ignore_shared, errp) &&
           set_cap(qmp, "events", TRUE, errp) &&
           (!setup->mapped_ram ||
            set_cap(qmp, "mapped-ram", TRUE, errp)) &&
           (!setup->multifd_channels ||
            set_cap(qmp, "multifd", TRUE, errp)) &&
           qmp_set_parameter(qmp, "mode", "cpr-reboot", errp) &&
           qmp_run(qmp, "migrate-set-parameters", args, errp);
}

/* QMP event timestamp in microseconds since the epoch. */
static double event_time_us(JsonObject *ev)
{
    JsonObject *ts = json_object_get_object_member(ev, "timestamp");

    return json_object_get_int_member(ts, "seconds") * 1e6 +
           json_object_get_int_member(ts, "microseconds");
}

static const char *migration_status(JsonObject *ev)
{
    JsonObject *data = json_object_get_object_member(ev, "data");

    return data ? json_object_get_string_member_with_default(data, "status", "")
                : "";
}

gboolean cpr_save_start(QemuProc *src, const CprSetup *setup,
                          const char *uri, GError **errp)
{
    Qmp *qmp = qemu_proc_qmp(src);

    if (!cpr_setup(qmp, setup, errp) || !qmp_migrate(qmp, uri, errp)) {
        qemu_proc_add_log_to_error(src, errp);
        return FALSE;
    }
    return TRUE;
}

gboolean cpr_save_finish(QemuProc *src, CprSample *s, double *stop_at_us,
                           double *completed_at_us, GError **errp)
{
    Qmp *qmp = qemu_proc_qmp(src);
    g_autoptr(JsonObject) stop = NULL;
    g_autoptr(JsonNode) info = NULL;
    JsonObject *ram;
    double done = 0;

    /* bounded: each wait has a deadline and a migration has few states */
    for (int i = 0; i < 16 && done == 0; i++) {
        g_autoptr(JsonObject) ev = qmp_wait_event(qmp, "MIGRATION",
                                                  MIGRATE_TIMEOUT_MS, errp);
        const char *status;

        if (!ev) {
            goto fail;
        }
        status = migration_status(ev);
        if (g_str_equal(status, "completed")) {
            done = event_time_us(ev);
        } else if (g_str_equal(status, "failed") ||
                   g_str_equal(status, "cancelled")) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_MIGRATION,
                        "migration %s", status);
            goto fail;
        }
    }
    stop = qmp_wait_event(qmp, "STOP", 1000, errp);
    info = qmp_execute(qmp, "query-migrate", NULL, errp);
    if (!done || !stop || !info) {
        goto fail;
    }
    s->pause_us = done - event_time_us(stop);
    s->downtime_us = json_object_get_int_member_with_default(
        json_node_get_object(info), "downtime", -1) * 1e3;
    ram = json_object_has_member(json_node_get_object(info), "ram")
          ? json_object_get_object_member(json_node_get_object(info), "ram")
          : NULL;
    if (ram) {
        s->stream_bytes = json_object_get_int_member(ram, "transferred");
    }
    if (stop_at_us) {
        *stop_at_us = event_time_us(stop);
    }
    if (completed_at_us) {
        *completed_at_us = done;
    }
    return TRUE;

fail:
    qemu_proc_add_log_to_error(src, errp);
    return FALSE;
}

gboolean cpr_save_quit(QemuProc *src, CprSample *s, GError **errp)
{
    g_autofree char *log = NULL;
    int status;

    if (!qmp_quit(qemu_proc_qmp(src), errp) ||
        !qemu_proc_wait(src, QUIT_TIMEOUT_MS, &status, errp)) {
        qemu_proc_add_log_to_error(src, errp);
        return FALSE;
    }
    log = qemu_proc_log(src);
    qemu_log_phases(log, &s->stop_us, &s->saved_us, &s->commit_us);
    return TRUE;
}

gboolean cpr_save(QemuProc *src, const CprSetup *setup, const char *uri,
                    CprSample *s, GError **errp)
{
    return cpr_save_start(src, setup, uri, errp) &&
           cpr_save_finish(src, s, NULL, NULL, errp) &&
           cpr_save_quit(src, s, errp);
}

char *cpr_plugin_scheme(const char *uri)
{
    static const char *const builtin[] = {
        "tcp", "unix", "vsock", "fd", "exec", "file", "rdma", NULL,
    };
    const char *colon = strchr(uri, ':');
    g_autofree char *scheme = NULL;

    if (!colon) {
        return NULL;
    }
    scheme = g_strndup(uri, colon - uri);
    return g_strv_contains(builtin, scheme) ? NULL : g_steal_pointer(&scheme);
}

#define PRELOAD_PROP "migration.x-preload-transports="

GStrv cpr_preload_args(const char *const *args, const char *uri)
{
    g_autofree char *scheme = cpr_plugin_scheme(uri);
    GPtrArray *a = g_ptr_array_new();
    gboolean has = FALSE;

    for (guint i = 0; args && args[i]; i++) {
        has = has || g_str_has_prefix(args[i], PRELOAD_PROP);
        g_ptr_array_add(a, g_strdup(args[i]));
    }
    if (scheme && !has) {
        g_ptr_array_add(a, g_strdup("-global"));
        g_ptr_array_add(a, g_strconcat(PRELOAD_PROP, scheme, NULL));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* Poll query-status as fast as QEMU answers until it says "running". */
static gboolean poll_running(Qmp *qmp, double sent, CprRestoreSeen *seen,
                             GError **errp)
{
    gint64 deadline = deadline_after_ms(MIGRATE_TIMEOUT_MS);

    seen->polls = 0;
    for (;;) {
        g_autofree char *st = qmp_query_status(qmp, errp);

        if (!st) {
            return FALSE;
        }
        seen->polls++;
        if (g_str_equal(st, "running")) {
            seen->running_us = g_get_real_time() - sent;
            return TRUE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "still '%s' %d ms after migrate-incoming", st,
                        MIGRATE_TIMEOUT_MS);
            return FALSE;
        }
    }
}

static QemuProc *restore(const QemuProcOpts *opts, const CprSetup *setup,
                         const char *uri, CprSample *s, CprRestoreSeen *seen,
                         GError **errp)
{
    g_auto(GStrv) args = cpr_preload_args(opts->args, uri);
    QemuProcOpts with_preload = *opts;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(JsonObject) resume = NULL;
    Qmp *qmp;
    double sent;

    /* the transport loads at start-up, not inside migrate-incoming */
    with_preload.args = (const char *const *)args;
    dst = qemu_proc_start_incoming(&with_preload, "defer", errp);
    if (!dst) {
        return NULL;
    }
    s->qmp_ready_us = qemu_proc_qmp_ready_us(dst);
    qmp = qemu_proc_qmp(dst);
    if (!cpr_setup(qmp, setup, errp)) {
        goto fail;
    }
    /* same clock as QEMU's event timestamps */
    sent = g_get_real_time();
    if (!qmp_migrate_incoming(qmp, uri, errp)) {
        goto fail;
    }
    if (seen) {
        seen->reply_us = g_get_real_time() - sent;
        if (!poll_running(qmp, sent, seen, errp)) {
            goto fail;
        }
    }
    resume = qmp_wait_event(qmp, "RESUME", MIGRATE_TIMEOUT_MS, errp);
    if (!resume) {
        goto fail;
    }
    s->incoming_us = event_time_us(resume) - sent;
    if (seen) {
        seen->resume_us = s->incoming_us;
    }
    /* consume the incoming side's own "completed": this process is the
     * next cycle's source and must not mistake it for its save's */
    for (int i = 0; i < 16; i++) {
        g_autoptr(JsonObject) ev = qmp_wait_event(qmp, "MIGRATION",
                                                  MIGRATE_TIMEOUT_MS, errp);

        if (!ev) {
            goto fail;
        }
        if (g_str_equal(migration_status(ev), "completed")) {
            return g_steal_pointer(&dst);
        }
    }
    g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL,
                "no MIGRATION completed event after restore");

fail:
    qemu_proc_add_log_to_error(dst, errp);
    return NULL;
}

QemuProc *cpr_restore(const QemuProcOpts *opts, const CprSetup *setup,
                      const char *uri, CprSample *s, GError **errp)
{
    return restore(opts, setup, uri, s, NULL, errp);
}

QemuProc *cpr_restore_seen(const QemuProcOpts *opts, const CprSetup *setup,
                           const char *uri, CprSample *s,
                           CprRestoreSeen *seen, GError **errp)
{
    seen->reply_us = seen->resume_us = seen->running_us = seen->polls = NAN;
    return restore(opts, setup, uri, s, seen, errp);
}

QemuProc *cpr_cycle(QemuProc *src, const CprSetup *setup, const char *uri,
                    const char *dst_name, CprSample *s, GError **errp)
{
    QemuProcOpts opts = *qemu_proc_opts(src);

    if (!cpr_save(src, setup, uri, s, errp)) {
        return NULL;
    }
    opts.name = dst_name;
    return cpr_restore(&opts, setup, uri, s, errp);
}
