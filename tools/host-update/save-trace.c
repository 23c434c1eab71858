/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's downtime trace point, on for the save when QEMU's stderr is a
 * log we can read: the commit time and the pause's phases come from the
 * lines the save adds (tests/lib/qemu-log.c).
 */
#include "host-update.h"
#include "qemu-log.h"

#include <math.h>
#include <sys/stat.h>

#define TRACE_EVENT      "vmstate_downtime_checkpoint"

/* Enable the downtime trace point if QEMU's stderr is a log we can read. */
void trace_start(Vm *vm)
{
    g_autoptr(JsonObject) q = obj_args("name", TRACE_EVENT);
    g_autoptr(JsonObject) set = obj_args("name", TRACE_EVENT);
    g_autoptr(JsonNode) ret = NULL;
    struct stat st;

    vm->log_off = -1;
    if (!vm->err_path || stat(vm->err_path, &st) < 0) {
        return;
    }
    ret = qmp_execute(vm->qmp, "trace-event-get-state", q, NULL);
    if (!ret || !JSON_NODE_HOLDS_ARRAY(ret) ||
        json_array_get_length(json_node_get_array(ret)) != 1) {
        return;
    }
    vm->trace_was_on = g_str_equal(json_object_get_string_member_with_default(
        json_array_get_object_element(json_node_get_array(ret), 0), "state",
        ""), "enabled");
    json_object_set_boolean_member(set, "enable", TRUE);
    if (qmp_run(vm->qmp, "trace-event-set-state", set, NULL)) {
        vm->log_off = st.st_size;
    }
}

/* Put the trace point back as it was before the save. */
void trace_stop(Vm *vm)
{
    g_autoptr(JsonObject) set = obj_args("name", TRACE_EVENT);

    if (vm->log_off >= 0 && !vm->trace_was_on) {
        json_object_set_boolean_member(set, "enable", FALSE);
        qmp_run(vm->qmp, "trace-event-set-state", set, NULL);
    }
}

/* Commit time from the trace lines the save added (needs -msg timestamp=on). */
void trace_finish(Vm *vm)
{
    g_autofree char *log = NULL;
    gsize len;

    vm->commit_us = vm->vm_stop_us = vm->device_save_us = NAN;
    if (vm->log_off < 0) {
        return;
    }
    trace_stop(vm);
    if (g_file_get_contents(vm->err_path, &log, &len, NULL) &&
        (gsize)vm->log_off <= len) {
        qemu_log_phases(log + vm->log_off, &vm->vm_stop_us,
                        &vm->device_save_us, &vm->commit_us);
    }
}
