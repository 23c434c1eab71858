/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which way a VM is saved: pmem: where its QEMU has the transport hook,
 * else the exec: helper (docs/exec-helper.md), whose commit is waited
 * for after QEMU reports "completed".
 */
#include "host-update.h"

#include <string.h>
#include <unistd.h>

/*
 * Whether this QEMU has the transport hook (so knows pmem:): its
 * migration object has the hook's x-preload-transports property.  One
 * QMP command; no migration is tried.
 */
static gboolean vm_has_hook(Vm *vm, GError **errp)
{
    g_autoptr(JsonObject) args = obj_args("typename", "migration");
    g_autoptr(JsonNode) ret = qmp_execute(vm->qmp, "qom-list-properties",
                                          g_steal_pointer(&args), errp);
    JsonArray *props;

    if (!ret) {
        return FALSE;
    }
    props = JSON_NODE_HOLDS_ARRAY(ret) ? json_node_get_array(ret) : NULL;
    for (guint i = 0; props && i < json_array_get_length(props); i++) {
        JsonObject *o = json_array_get_object_element(props, i);

        if (o && !g_strcmp0(json_object_get_string_member_with_default(
                                o, "name", ""), "x-preload-transports")) {
            return TRUE;
        }
    }
    return FALSE;
}

/*
 * The URI of @vm's save: pmem:IMAGE, or for a QEMU without the hook the
 * exec: helper with an id to wait for (docs/exec-helper.md).  Paths are
 * quoted for QEMU's /bin/sh -c.
 */
gboolean vm_choose_uri(Vm *vm, guint index, GError **errp)
{
    g_autofree char *tool = NULL, *img = NULL;
    GError *err = NULL;

    if (opt_file) {
        vm->uri = g_strconcat("file:", vm->image, NULL);
        return TRUE;
    }
    if (vm_has_hook(vm, &err)) {
        vm->uri = g_strconcat("pmem:", vm->image, NULL);
        return TRUE;
    }
    if (err) {
        g_propagate_prefixed_error(errp, err, "qom-list-properties: ");
        return FALSE;
    }
    /* QEMU runs it from its own PATH and working directory. */
    tool = g_path_is_absolute(cpr_pmem_path) ? g_strdup(cpr_pmem_path) :
           g_find_program_in_path(cpr_pmem_path);
    if (!tool) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s: no absolute path for QEMU's exec: helper",
                    cpr_pmem_path);
        return FALSE;
    }
    g_free(cpr_pmem_path);
    cpr_pmem_path = g_steal_pointer(&tool);
    vm->exec = TRUE;
    vm->exec_id = g_strdup_printf("cpr-host-update-%d-%" G_GINT64_FORMAT
                                  "-%u", (int)getpid(), g_get_real_time(),
                                  index);
    tool = g_shell_quote(cpr_pmem_path);
    img = g_shell_quote(vm->image);
    vm->uri = g_strdup_printf("exec:%s save --id=%s %s", tool, vm->exec_id,
                              img);
    return TRUE;
}

/* After an exec: save completed: until the helper committed, then the
 * restore's URI. */
gboolean vm_exec_committed(Vm *vm, GError **errp)
{
    g_autofree char *id = g_strconcat("--id=", vm->exec_id, NULL);
    g_autofree char *tool = g_shell_quote(cpr_pmem_path);
    g_autofree char *img = g_shell_quote(vm->image);
    int rc = run_cpr_pmem("wait", id, vm->image, NULL);

    if (rc != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s wait %s %s: the exec: save was not committed (exit "
                    "%d)", cpr_pmem_path, id, vm->image, rc);
        return FALSE;
    }
    g_free(vm->uri);
    vm->uri = g_strdup_printf("exec:%s load %s", tool, img);
    return TRUE;
}
