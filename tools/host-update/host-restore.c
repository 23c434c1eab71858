/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update restore: after the boot, every VM of the manifest back
 * (docs/host-update.md).
 */
#include "host-update.h"
#include "host-files.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

/*
 * cmd_restore -- cpr-host-update restore: every VM of the manifest
 * started again, restored and running; the manifest then kept only for
 * the VMs that were not, so that none is ever restored twice.
 */
int cmd_restore(const char *manifest_path)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_free);
    g_autoptr(GError) err = NULL;
    g_autofree char *done = NULL;
    JsonObject *root;
    JsonArray *saved;
    guint restored = 0;
    int rc;

    rc = manifest_load(manifest_path, parser, &root, vms);
    if (rc <= 0) {
        return rc == 0 ? EXIT_OK : EXIT_FAILED;
    }
    saved = json_object_get_array_member(root, "vms");

    /* Start every QEMU, then talk to each: they start up in parallel. */
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_spawn(vm, &err)) {
            vm_fail(vm, "start", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm->failed && (!vm_reconnect(vm, &err) ||
                            !set_cpr_reboot(vm->qmp, &err))) {
            vm_fail(vm, "QMP", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonObject) args = NULL;

        if (vm->failed) {
            continue;
        }
        args = obj_args("uri", vm->uri);
        stamp(&vm->incoming_at, &vm->incoming_mono);
        if (!qmp_send(vm->qmp, "migrate-incoming", args, &err)) {
            vm_fail(vm, "migrate-incoming", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonNode) ret = NULL;

        if (vm->failed) {
            continue;
        }
        ret = qmp_receive(vm->qmp, "migrate-incoming", &err);
        if (!ret) {
            vm_fail(vm, "migrate-incoming", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm->failed) {
            vm_wait_resumed(vm);
        }
        if (!vm->failed && !vm->was_running) {
            qmp_run(vm->qmp, "stop", NULL, NULL);
        }
        restored += !vm->failed;
    }
    {
        g_autofree char *before = str_member(root, "boot-id-before");

        print_restore_table(vms, saved, num_member(root, "reboot-at-us"),
                            before);
        if (opt_times) {
            write_times(vms, saved, num_member(root, "reboot-at-us"), before);
        }
    }

    /* A restored VM runs on: its image must never be restored again. */
    done = g_strconcat(manifest_path, ".restored", NULL);
    if (restored == vms->len) {
        if (!host_rename(manifest_path, done, &err)) {
            note("%s", err->message);
            return EXIT_FAILED;
        }
        note("%u VM(s) restored; manifest moved to %s", restored, done);
        return EXIT_OK;
    }
    /* Keep only the VMs still to restore, and stop their failed QEMUs. */
    for (guint i = vms->len; i-- > 0;) {
        Vm *vm = vms->pdata[i];

        if (vm->failed) {
            if (vm->pid > 0) {
                kill(vm->pid, SIGTERM);
                waitpid(vm->pid, NULL, 0);
            }
            note("%s: not restored: %s", vm->name, vm->error);
        } else {
            json_array_remove_element(saved, i);
        }
    }
    manifest_rewrite(manifest_path, parser);
    note("%u of %u VM(s) restored; %s keeps the others, run restore again "
         "once the cause is fixed", restored, vms->len, manifest_path);
    return EXIT_FAILED;
}
