/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qemu-proc.h"
#include "line-socket.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

struct QemuProc {
    QemuProcOpts opts;
    GStrv args;                 /* owns opts.args */
    char *qmp_path;
    char *qtest_path;
    char *log_path;
    GSubprocess *proc;
    GMainContext *ctx;          /* where the exit notification lands */
    gboolean exited;
    Qmp *qmp;
    Qtest *qtest;
    gint64 spawn_time;
    gint64 qmp_ready_time;
};

/* Runs in the child between fork and exec. */
static void die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void child_exited(GObject *src, GAsyncResult *res, gpointer data)
{
    QemuProc *p = data;

    g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
    p->exited = TRUE;
}

static char *tail(const char *text, gsize max)
{
    gsize len = strlen(text);

    return g_strdup(len > max ? text + len - max : text);
}

/* Append the end of QEMU's log to an error: that is where the reason is. */
void qemu_proc_add_log_to_error(QemuProc *p, GError **errp)
{
    g_autofree char *log = NULL;
    g_autofree char *end = NULL;

    if (!errp || !*errp) {
        return;
    }
    /* Give a dying QEMU a moment to finish writing its complaint. */
    for (int i = 0; i < 50 && !p->exited; i++) {
        g_main_context_iteration(p->ctx, FALSE);
        g_usleep(2000);
    }
    log = qemu_proc_log(p);
    end = tail(log, 2000);
    g_prefix_error(errp, "%s: ", p->opts.name);
    if (*end) {
        char *msg = g_strdup_printf("%s\n--- %s ---\n%s", (*errp)->message,
                                    p->log_path, end);
        g_free((*errp)->message);
        (*errp)->message = msg;
    }
}

static gboolean qemu_died(QemuProc *p, GError **errp)
{
    if (qemu_proc_running(p)) {
        return FALSE;
    }
    g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "QEMU exited during start-up");
    return TRUE;
}

/*
 * Short slices so that a QEMU that dies at start-up (bad argument) fails
 * the test at once instead of after the whole deadline.
 */
static gboolean wait_for_qemu(QemuProc *p, GSocket *sock, GIOCondition cond,
                              gint64 deadline, GError **errp)
{
    while (!qemu_died(p, errp)) {
        g_autoptr(GError) err = NULL;

        if (g_socket_condition_timed_wait(sock, cond, 20000, NULL, &err)) {
            return TRUE;
        }
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
            g_get_monotonic_time() > deadline) {
            g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                       "waiting for QEMU: ");
            return FALSE;
        }
    }
    return FALSE;
}

static GSocket *connect_qmp(QemuProc *p, gint64 deadline, GError **errp)
{
    while (!qemu_died(p, errp)) {
        g_autoptr(GError) err = NULL;
        GSocket *sock = unix_socket_connect(p->qmp_path,
                                            MIN(deadline_after_ms(20), deadline),
                                            &err);

        if (sock) {
            return sock;
        }
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
            g_get_monotonic_time() > deadline) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return NULL;
        }
    }
    return NULL;
}

QemuProc *qemu_proc_start(const QemuProcOpts *opts, GError **errp)
{
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSocket) listener = NULL;
    g_autoptr(GSocket) qmp_sock = NULL;
    g_autofree char *qmp_arg = NULL;
    g_autofree char *qtest_arg = NULL;
    guint timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
    gint64 deadline = deadline_after_ms(timeout_ms);
    QemuProc *p = g_new0(QemuProc, 1);

    p->opts = *opts;
    p->args = g_strdupv((char **)opts->args);
    p->opts.args = (const char *const *)p->args;
    p->opts.binary = g_strdup(opts->binary);
    p->opts.dir = g_strdup(opts->dir);
    p->opts.name = g_strdup(opts->name);
    p->qmp_path = g_strdup_printf("%s/%s.qmp", opts->dir, opts->name);
    p->log_path = g_strdup_printf("%s/%s.log", opts->dir, opts->name);
    p->ctx = g_main_context_new();
    g_unlink(p->qmp_path);

    g_ptr_array_add(argv, (char *)opts->binary);
    for (const char *const *a = opts->args; a && *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", p->qmp_path);
    g_ptr_array_add(argv, "-qmp");
    g_ptr_array_add(argv, qmp_arg);
    if (opts->qtest) {
        p->qtest_path = g_strdup_printf("%s/%s.qtest", opts->dir, opts->name);
        g_unlink(p->qtest_path);
        listener = qtest_listen(p->qtest_path, errp);
        if (!listener) {
            goto fail;
        }
        qtest_arg = g_strdup_printf("unix:%s", p->qtest_path);
        g_ptr_array_add(argv, "-qtest");
        g_ptr_array_add(argv, qtest_arg);
        /* otherwise QEMU echoes every qtest command into the log */
        g_ptr_array_add(argv, "-qtest-log");
        g_ptr_array_add(argv, "/dev/null");
    }
    g_ptr_array_add(argv, NULL);

    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT |
                                         G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path(launcher, p->log_path);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);

    p->spawn_time = g_get_monotonic_time();
    p->proc = g_subprocess_launcher_spawnv(launcher,
                                           (const char *const *)argv->pdata, errp);
    if (!p->proc) {
        goto fail;
    }
    g_main_context_push_thread_default(p->ctx);
    g_subprocess_wait_async(p->proc, NULL, child_exited, p);
    g_main_context_pop_thread_default(p->ctx);

    if (listener) {
        if (!wait_for_qemu(p, listener, G_IO_IN, deadline, errp)) {
            goto fail;
        }
        p->qtest = qtest_accept(listener, 1000, errp);
        if (!p->qtest) {
            goto fail;
        }
    }
    qmp_sock = connect_qmp(p, deadline, errp);
    if (!qmp_sock) {
        goto fail;
    }
    p->qmp = qmp_new(qmp_sock, MAX(deadline - g_get_monotonic_time(), 0) / 1000,
                     errp);
    if (!p->qmp) {
        goto fail;
    }
    p->qmp_ready_time = g_get_monotonic_time();
    return p;

fail:
    if (p->proc) {
        qemu_proc_add_log_to_error(p, errp);
    }
    qemu_proc_free(p);
    return NULL;
}

Qmp *qemu_proc_qmp(QemuProc *p)
{
    return p->qmp;
}

Qtest *qemu_proc_qtest(QemuProc *p)
{
    return p->qtest;
}

const QemuProcOpts *qemu_proc_opts(QemuProc *p)
{
    return &p->opts;
}

gint64 qemu_proc_qmp_ready_us(QemuProc *p)
{
    return p->qmp_ready_time - p->spawn_time;
}

gboolean qemu_proc_running(QemuProc *p)
{
    g_main_context_iteration(p->ctx, FALSE);
    return p->proc && !p->exited;
}

gboolean qemu_proc_wait(QemuProc *p, guint timeout_ms, int *status,
                        GError **errp)
{
    gint64 deadline = deadline_after_ms(timeout_ms);

    while (qemu_proc_running(p)) {
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "%s: QEMU still running after %u ms", p->opts.name,
                        timeout_ms);
            return FALSE;
        }
        g_usleep(1000);
    }
    if (status) {
        *status = g_subprocess_get_if_signaled(p->proc)
                  ? 128 + g_subprocess_get_term_sig(p->proc)
                  : g_subprocess_get_exit_status(p->proc);
    }
    return TRUE;
}

void qemu_proc_kill(QemuProc *p)
{
    if (qemu_proc_running(p)) {
        g_subprocess_force_exit(p->proc);
        qemu_proc_wait(p, 10000, NULL, NULL);
    }
}

char *qemu_proc_log(QemuProc *p)
{
    char *text = NULL;

    if (!g_file_get_contents(p->log_path, &text, NULL, NULL)) {
        return g_strdup("");
    }
    return text;
}

void qemu_proc_free(QemuProc *p)
{
    if (!p) {
        return;
    }
    qmp_free(p->qmp);
    qtest_free(p->qtest);
    if (p->proc) {
        qemu_proc_kill(p);
        /* Drain the exit callback before its user data goes away. */
        while (!p->exited) {
            g_main_context_iteration(p->ctx, TRUE);
        }
        g_object_unref(p->proc);
    }
    g_main_context_unref(p->ctx);
    if (p->qtest_path) {
        g_unlink(p->qtest_path);
    }
    g_unlink(p->qmp_path);
    g_free(p->qmp_path);
    g_free(p->qtest_path);
    g_free(p->log_path);
    g_strfreev(p->args);
    g_free((char *)p->opts.binary);
    g_free((char *)p->opts.dir);
    g_free((char *)p->opts.name);
    g_free(p);
}

QemuProc *qemu_proc_start_incoming(const QemuProcOpts *opts,
                                   const char *incoming, GError **errp)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    QemuProcOpts with = *opts;

    for (const char *const *a = opts->args; a && *a; a++) {
        g_ptr_array_add(args, (char *)*a);
    }
    g_ptr_array_add(args, "-incoming");
    g_ptr_array_add(args, (char *)incoming);
    g_ptr_array_add(args, NULL);
    with.args = (const char *const *)args->pdata;
    return qemu_proc_start(&with, errp);
}
