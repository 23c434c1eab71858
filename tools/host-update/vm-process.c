/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a running QEMU was started with, read from /proc through the pid
 * its QMP socket's peer credentials give: what the restore starts again.
 */
#include "host-update.h"
#include "line-socket.h"

#include <string.h>
#include <sys/stat.h>

static GStrv read_nul_list(const char *path, GError **errp)
{
    g_autofree char *data = NULL;
    GPtrArray *a;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, errp)) {
        return NULL;
    }
    a = g_ptr_array_new();
    for (gsize i = 0; i < len; i += strlen(data + i) + 1) {
        g_ptr_array_add(a, g_strdup(data + i));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* Path of @fd of @pid if it is a regular file (a log), else NULL. */
static char *regular_fd_path(pid_t pid, int fd)
{
    g_autofree char *link = g_strdup_printf("/proc/%d/fd/%d", (int)pid, fd);
    g_autofree char *target = g_file_read_link(link, NULL);
    struct stat st;

    if (!target || target[0] != '/' || stat(link, &st) < 0 ||
        !S_ISREG(st.st_mode) || g_str_has_suffix(target, " (deleted)")) {
        return NULL;
    }
    return g_steal_pointer(&target);
}

/* vm_connect -- connect, find the peer's pid (SO_PEERCRED) and read its command line. */
gboolean vm_connect(Vm *vm, GError **errp)
{
    gint64 deadline = deadline_after_ms(opt_timeout_s * 1000);
    g_autoptr(GSocket) sock = unix_socket_connect(vm->qmp_path, deadline, errp);
    g_autoptr(GCredentials) cred = NULL;
    g_autofree char *proc = NULL;

    if (!sock) {
        return FALSE;
    }
    cred = g_socket_get_credentials(sock, errp);
    if (!cred) {
        return FALSE;
    }
    vm->pid = g_credentials_get_unix_pid(cred, errp);
    if (vm->pid <= 0) {
        return FALSE;
    }
    vm->qmp = qmp_new(sock, opt_timeout_s * 1000, errp);
    if (!vm->qmp) {
        return FALSE;
    }
    qmp_set_timeout(vm->qmp, opt_timeout_s * 1000);
    proc = g_strdup_printf("/proc/%d", (int)vm->pid);
    {
        g_autofree char *cmdline = g_build_filename(proc, "cmdline", NULL);
        g_autofree char *environ_ = g_build_filename(proc, "environ", NULL);
        g_autofree char *cwd = g_build_filename(proc, "cwd", NULL);
        g_autofree char *exe = g_build_filename(proc, "exe", NULL);

        vm->argv = read_nul_list(cmdline, errp);
        if (!vm->argv || !vm->argv[0]) {
            return FALSE;
        }
        vm->env = read_nul_list(environ_, errp);
        if (!vm->env) {
            return FALSE;
        }
        vm->cwd = g_file_read_link(cwd, errp);
        if (!vm->cwd) {
            return FALSE;
        }
        vm->exe = g_file_read_link(exe, NULL);
        if (vm->exe && g_str_has_suffix(vm->exe, " (deleted)")) {
            vm->exe[strlen(vm->exe) - strlen(" (deleted)")] = '\0';
        }
    }
    vm->out_path = regular_fd_path(vm->pid, 1);
    vm->err_path = regular_fd_path(vm->pid, 2);
    return TRUE;
}
