/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One VM's part of the save: cpr-reboot set up, its image made before
 * any VM stops, the end of its migration waited for, and with
 * --scheme=file its image made durable.
 */
#include "host-update.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* What both sides of a cpr-reboot need: RAM stays in its shared file. */
gboolean set_cpr_reboot(Qmp *qmp, GError **errp)
{
    return qmp_set_capability(qmp, "x-ignore-shared", TRUE, errp) &&
           qmp_set_capability(qmp, "events", TRUE, errp) &&
           qmp_set_parameter(qmp, "mode", "cpr-reboot", errp);
}

/*
 * A VM's first save into an image that does not exist yet creates it
 * inside the migrate command: its header only (0.1 ms), the stream gets
 * its blocks as it goes.  Making it here with "cpr-pmem create" would
 * make it slower: an image allocated throughout is faulted in before
 * that VM stops (2-3 ms on tmpfs), while the VMs told first wait.  Note
 * only that this attempt makes it, so that a rollback removes it if no
 * save committed into it; an existing file is left to the save.
 */
gboolean vm_prepare_image(Vm *vm, GError **errp)
{
    struct stat st;

    (void)errp;
    if (!opt_file && lstat(vm->image, &st) < 0 && errno == ENOENT) {
        vm->created = TRUE;
    }
    return TRUE;
}

/* vm_setup -- a running or paused VM set up for cpr-reboot. */
gboolean vm_setup(Vm *vm, GError **errp)
{
    g_autofree char *status = qmp_query_status(vm->qmp, errp);

    if (!status) {
        return FALSE;
    }
    vm->was_running = g_str_equal(status, "running");
    if (!vm->was_running && !g_str_equal(status, "paused")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL,
                    "VM is '%s', not running or paused", status);
        return FALSE;
    }
    return set_cpr_reboot(vm->qmp, errp);
}

static const char *event_status(JsonObject *ev)
{
    JsonObject *data = json_object_get_object_member(ev, "data");

    return data ? json_object_get_string_member_with_default(data, "status", "")
                : "";
}

/* Wait for the migration's end; STOP and MIGRATION events carry the times. */
void vm_wait_saved(Vm *vm)
{
    g_autoptr(GError) err = NULL;

    for (int i = 0; i < 32 && !vm->completed && !vm->failed; i++) {
        g_autoptr(JsonObject) ev = qmp_wait_event(vm->qmp, "MIGRATION",
                                                  opt_timeout_s * 1000, &err);
        const char *st;

        if (!ev) {
            vm_fail(vm, "waiting for the save", err);
            return;
        }
        st = event_status(ev);
        if (g_str_equal(st, "completed")) {
            vm->completed = TRUE;
            stamp_event(ev, &vm->completed_at, &vm->completed_mono);
        } else if (g_str_equal(st, "failed") || g_str_equal(st, "cancelled")) {
            g_autoptr(JsonNode) info = qmp_execute(vm->qmp, "query-migrate",
                                                   NULL, NULL);
            const char *desc = info ? json_object_get_string_member_with_default(
                json_node_get_object(info), "error-desc", st) : st;

            vm->failed = TRUE;
            vm->error = g_strdup_printf("save %s: %s", st, desc);
            note("%s: %s", vm->name, vm->error);
        }
    }
    if (vm->completed) {
        g_autoptr(JsonObject) stop = qmp_wait_event(vm->qmp, "STOP", 1000, NULL);

        stamp_event(stop, &vm->stop_at, &vm->stop_mono);
        trace_finish(vm);
    }
}

/* --scheme=file: make the image and its name durable, timed. */
gboolean sync_image(Vm *vm, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(vm->image);
    double t0 = mono_us();
    int fd = open(vm->image, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    gboolean ok = fd >= 0 && dfd >= 0 && fstat(fd, &st) == 0 &&
                  (S_ISREG(st.st_mode) || (errno = EINVAL, FALSE)) &&
                  fdatasync(fd) == 0 && fsync(dfd) == 0;
    int e = errno;

    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (!ok) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s",
                    vm->image, g_strerror(e));
        return FALSE;
    }
    vm->sync_us = mono_us() - t0;
    return TRUE;
}
