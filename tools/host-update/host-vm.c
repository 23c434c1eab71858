/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM record that every part of cpr-host-update works on, and how a
 * VM's failure is told.
 */
#include "host-update.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* vm_new -- a VM with no instant and no time yet (NAN: never printed). */
Vm *vm_new(void)
{
    Vm *vm = g_new0(Vm, 1);

    vm->sent_at = vm->stop_at = vm->completed_at = NAN;
    vm->sent_mono = vm->stop_mono = vm->completed_mono = NAN;
    vm->commit_us = vm->vm_stop_us = vm->device_save_us = vm->sync_us = NAN;
    vm->spawn_at = vm->qmp_at = vm->incoming_at = NAN;
    vm->resume_at = vm->running_at = NAN;
    vm->spawn_mono = vm->qmp_mono = vm->incoming_mono = NAN;
    vm->resume_mono = vm->running_mono = NAN;
    return vm;
}

/* vm_free -- the VM, its QMP connection closed. */
void vm_free(Vm *vm)
{
    qmp_free(vm->qmp);
    g_free(vm->name);
    g_free(vm->qmp_path);
    g_free(vm->exe);
    g_free(vm->image);
    g_free(vm->uri);
    g_free(vm->exec_id);
    g_strfreev(vm->argv);
    g_strfreev(vm->env);
    g_free(vm->cwd);
    g_free(vm->out_path);
    g_free(vm->err_path);
    g_free(vm->error);
    g_free(vm);
}

/* note -- a message on stderr, the tool named. */
void note(const char *fmt, ...)
{
    va_list ap;

    fputs("cpr-host-update: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* vm_fail -- see host-update.h. */
void vm_fail(Vm *vm, const char *what, GError *err)
{
    vm->failed = TRUE;
    if (!vm->error) {
        vm->error = g_strdup_printf("%s: %s", what, err ? err->message : "?");
    }
    note("%s: %s", vm->name, vm->error);
}

/* obj_args -- see host-update.h. */
JsonObject *obj_args(const char *k, const char *v)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, k, v);
    return o;
}
