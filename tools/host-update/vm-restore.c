/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One VM's part of the restore: its QEMU started again as it was (its
 * command line, environment, working directory and logs) waiting for
 * the incoming migration, connected to, and waited for until it runs.
 */
#include "host-update.h"
#include "host-files.h"
#include "line-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PRELOAD_PROP     "migration.x-preload-transports="

/* The saved command line less any -incoming, plus -incoming defer and the
 * transport preload (so that the restore does not pay for loading it). */
static GStrv restore_argv(GStrv argv, const char *uri)
{
    GPtrArray *a = g_ptr_array_new();
    /* stock QEMU (file:, --scheme=file) has no such property */
    gboolean preload = !g_str_has_prefix(uri, "pmem:");

    for (int i = 0; argv[i]; i++) {
        if (g_str_equal(argv[i], "-incoming") && argv[i + 1]) {
            i++;
            continue;
        }
        preload = preload || g_str_has_prefix(argv[i], PRELOAD_PROP);
        g_ptr_array_add(a, g_strdup(argv[i]));
    }
    g_ptr_array_add(a, g_strdup("-incoming"));
    g_ptr_array_add(a, g_strdup("defer"));
    if (!preload) {
        g_ptr_array_add(a, g_strdup("-global"));
        g_ptr_array_add(a, g_strdup(PRELOAD_PROP "pmem"));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* The binary: argv[0] if it is a path, else what the old process ran. */
static char *exec_path(Vm *vm)
{
    if (strchr(vm->argv[0], '/')) {
        return g_strdup(vm->argv[0]);
    }
    if (vm->exe) {
        return g_strdup(vm->exe);
    }
    return g_find_program_in_path(vm->argv[0]);
}

/* vm_spawn -- start QEMU in its own session; it outlives this tool. */
gboolean vm_spawn(Vm *vm, GError **errp)
{
    g_auto(GStrv) args = restore_argv(vm->argv, vm->uri);
    g_autofree char *bin = exec_path(vm);
    int out = host_open_log(vm->out_path);
    int errfd = vm->err_path && g_strcmp0(vm->err_path, vm->out_path)
                ? host_open_log(vm->err_path) : -1;
    pid_t pid;

    if (!bin) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s: not found", vm->argv[0]);
        close(out);
        return FALSE;
    }
    host_unlink_type(vm->qmp_path, S_IFSOCK);   /* the old QEMU's */
    stamp(&vm->spawn_at, &vm->spawn_mono);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        setsid();
        signal(SIGPIPE, SIG_DFL);
        dup2(null, 0);
        dup2(out, 1);
        dup2(errfd >= 0 ? errfd : out, 2);
        if (vm->cwd && chdir(vm->cwd) < 0) {
            _exit(126);
        }
        execve(bin, args, vm->env);
        _exit(127);
    }
    close(out);
    if (errfd >= 0) {
        close(errfd);
    }
    if (pid < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "fork: %s", g_strerror(errno));
        return FALSE;
    }
    vm->pid = pid;
    return TRUE;
}

/* vm_reconnect -- connect to the new QEMU's QMP socket, noticing if it dies first. */
gboolean vm_reconnect(Vm *vm, GError **errp)
{
    gint64 deadline = deadline_after_ms(opt_timeout_s * 1000);

    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GSocket) sock = unix_socket_connect(
            vm->qmp_path, MIN(deadline_after_ms(50), deadline), &err);
        int status;

        if (sock) {
            vm->qmp = qmp_new(sock, opt_timeout_s * 1000, errp);
            if (vm->qmp) {
                qmp_set_timeout(vm->qmp, opt_timeout_s * 1000);
                stamp(&vm->qmp_at, &vm->qmp_mono);
            }
            return vm->qmp != NULL;
        }
        if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "QEMU exited during start-up (status 0x%x)%s%s", status,
                        vm->err_path ? "; see " : "",
                        vm->err_path ? vm->err_path : "");
            vm->pid = 0;
            return FALSE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return FALSE;
        }
    }
}

/* vm_wait_resumed -- until the VM runs, or its load failed. */
void vm_wait_resumed(Vm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) ev = NULL;

    for (;;) {
        g_autoptr(JsonNode) info = NULL;
        const char *st;

        /* RESUME, unless the load fails first: then MIGRATION failed. */
        ev = qmp_wait_event(vm->qmp, "RESUME", 200, &err);
        if (ev) {
            break;
        }
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            vm_fail(vm, "waiting for RESUME", err);
            return;
        }
        g_clear_error(&err);
        info = qmp_execute(vm->qmp, "query-migrate", NULL, &err);
        if (!info) {
            vm_fail(vm, "query-migrate", err);
            return;
        }
        st = json_object_get_string_member_with_default(
            json_node_get_object(info), "status", "none");
        if (g_str_equal(st, "failed") || g_str_equal(st, "cancelled")) {
            vm->failed = TRUE;
            vm->error = g_strdup_printf("restore %s: %s", st,
                json_object_get_string_member_with_default(
                    json_node_get_object(info), "error-desc", st));
            note("%s: %s", vm->name, vm->error);
            return;
        }
        if (mono_us() - vm->incoming_mono > opt_timeout_s * 1e6) {
            vm->failed = TRUE;
            vm->error = g_strdup_printf("no RESUME after %u s", opt_timeout_s);
            note("%s: %s", vm->name, vm->error);
            return;
        }
    }
    stamp_event(ev, &vm->resume_at, &vm->resume_mono);
    if (!qmp_wait_status(vm->qmp, "running", opt_timeout_s * 1000, &err)) {
        vm_fail(vm, "query-status", err);
        return;
    }
    stamp(&vm->running_at, &vm->running_mono);
}
