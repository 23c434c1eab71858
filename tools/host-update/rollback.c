/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A save that fails before the reboot command leaves every VM as it was.
 */
#include "host-update.h"
#include "host-files.h"

#include <sys/stat.h>

/*
 * Put every VM back as it was: cancel what is still saving, resume what
 * was running, and make every image of this attempt unloadable so that a
 * later boot never restores a stale state under a VM that went on running.
 */
void rollback(GPtrArray *vms, gboolean invalidate)
{
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(GError) err = NULL;
        g_autofree char *status = NULL;

        if (!vm->qmp) {
            continue;
        }
        if (!vm->completed) {
            trace_stop(vm);
        }
        if (vm->sent && !vm->completed) {
            qmp_run(vm->qmp, "migrate_cancel", NULL, NULL);
            for (int t = 0; t < 100; t++) {
                g_autoptr(JsonNode) info = qmp_execute(vm->qmp, "query-migrate",
                                                       NULL, NULL);
                const char *st = info ? json_object_get_string_member_with_default(
                    json_node_get_object(info), "status", "none") : "none";

                if (!g_strv_contains((const char *const[]){ "setup", "active",
                        "cancelling", "device", "wait-unplug", NULL }, st)) {
                    break;
                }
                g_usleep(20000);
            }
        }
        /* "completed" comes a moment before the run state leaves
         * finish-migrate, and cont is refused until it has. */
        for (int t = 0; t < 500; t++) {
            g_free(status);
            status = qmp_query_status(vm->qmp, &err);
            if (!status || !g_str_equal(status, "finish-migrate")) {
                break;
            }
            g_usleep(10000);
        }
        if (vm->was_running && status && !g_str_equal(status, "running") &&
            !qmp_run(vm->qmp, "cont", NULL, &err)) {
            note("%s: cannot resume: %s", vm->name, err->message);
        } else if (status) {
            note("%s: left %s", vm->name,
                 vm->was_running ? "running" : "paused");
        } else {
            note("%s: %s", vm->name, err->message);
        }
    }
    for (guint i = 0; invalidate && i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->completed && opt_file) {
            host_unlink_type(vm->image, S_IFREG);  /* anyone would load it */
        } else if (vm->completed &&
                   g_file_test(vm->image, G_FILE_TEST_EXISTS)) {
            run_cpr_pmem("invalidate", NULL, vm->image, NULL);
        } else if (vm->created && !vm->completed) {
            /* made by this attempt, and nothing committed into it */
            host_unlink_type(vm->image, S_IFREG);
        }
    }
}
