/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The manifest: what the save leaves beside the images for the restore
 * after the reboot (every VM's command line, environment, image and
 * URI, and the save's times), and what the restore reads back of it.
 */
#include "host-update.h"
#include "host-files.h"
#include "json-report.h"

#include <math.h>
#include <sys/utsname.h>

#define MANIFEST_FORMAT  "cpr-host-update-manifest"
#define MANIFEST_VERSION 1

/* boot_id -- this boot's identity: a restore tells a reboot from none by it. */
char *boot_id(void)
{
    char *id = NULL;

    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &id, NULL, NULL)) {
        return g_strdup("");
    }
    return g_strstrip(id);
}

/* manifest_text -- the manifest of @vms; @reboot_at NAN for a dry run. */
char *manifest_text(GPtrArray *vms, double reboot_at, const char *cmd)
{
    g_autofree char *boot = boot_id();
    g_autoptr(JsonBuilder) b = json_builder_new();
    struct utsname u;

    uname(&u);
    json_builder_begin_object(b);
    report_add_str(b, "format", MANIFEST_FORMAT);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, MANIFEST_VERSION);
    report_add_str(b, "kernel-before", u.release);
    report_add_str(b, "boot-id-before", boot);
    report_add_str(b, "reboot-command", cmd);
    report_add_num(b, "reboot-at-us", reboot_at);
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        json_builder_begin_object(b);
        report_add_str(b, "name", vm->name);
        report_add_str(b, "qmp", vm->qmp_path);
        report_add_str(b, "image", vm->image);
        report_add_str(b, "uri", vm->uri);
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, vm->pid);
        json_builder_set_member_name(b, "was-running");
        json_builder_add_boolean_value(b, vm->was_running);
        report_add_str(b, "exe", vm->exe);
        report_add_strv(b, "argv", vm->argv);
        report_add_strv(b, "env", vm->env);
        report_add_str(b, "cwd", vm->cwd);
        report_add_str(b, "stdout", vm->out_path);
        report_add_str(b, "stderr", vm->err_path);
        report_add_num(b, "pre-stop-us", vm->stop_mono - vm->sent_mono);
        report_add_num(b, "pause-us", vm->completed_mono - vm->stop_mono);
        report_add_num(b, "commit-us", vm->commit_us);
        report_add_num(b, "vm-stop-us", vm->vm_stop_us);
        report_add_num(b, "device-save-us", vm->device_save_us);
        report_add_num(b, "sync-us", vm->sync_us);
        report_add_num(b, "sent-at-us", vm->sent_at);
        report_add_num(b, "stop-at-us", vm->stop_at);
        report_add_num(b, "completed-at-us", vm->completed_at);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return report_text(b, true);
}

static GStrv strv_member(JsonObject *o, const char *name)
{
    JsonArray *a = json_object_has_member(o, name)
                   ? json_object_get_array_member(o, name) : NULL;
    GPtrArray *v = g_ptr_array_new();

    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        g_ptr_array_add(v, g_strdup(json_array_get_string_element(a, i)));
    }
    g_ptr_array_add(v, NULL);
    return (GStrv)g_ptr_array_free(v, FALSE);
}

/* str_member -- a string member of a manifest object, or NULL. */
char *str_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? g_strdup(json_node_get_string(n))
                                         : NULL;
}

/* num_member -- a time of a manifest object, or NAN. */
double num_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_double(n) : NAN;
}

/*
 * manifest_load -- the manifest at @path, if it is trusted (host-files.h)
 * and of this format and version: 1 with its root object (owned by
 * @parser) in *@root and a Vm for each of its VMs added to @vms; 0 if
 * there is none; -1 (noted) if it cannot be used.
 */
int manifest_load(const char *path, JsonParser *parser, JsonObject **root,
                  GPtrArray *vms)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    const char *format;
    JsonArray *saved;
    gsize len = 0;

    text = host_read_trusted(path, &len, &err);
    if (!text && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        note("%s: no manifest, nothing to restore", path);
        return 0;
    }
    if (!text) {
        note("%s", err->message);
        return -1;
    }
    if (!json_parser_load_from_data(parser, text, len, &err) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        note("%s: %s", path, err ? err->message : "not an object");
        return -1;
    }
    *root = json_node_get_object(json_parser_get_root(parser));
    format = json_object_get_string_member_with_default(*root, "format", "");
    if (g_strcmp0(format, MANIFEST_FORMAT) ||
        json_object_get_int_member_with_default(*root, "version", 0) !=
            MANIFEST_VERSION ||
        !json_object_has_member(*root, "vms")) {
        note("%s: not a version %d %s", path, MANIFEST_VERSION,
             MANIFEST_FORMAT);
        return -1;
    }
    saved = json_object_get_array_member(*root, "vms");
    for (guint i = 0; i < json_array_get_length(saved); i++) {
        JsonObject *o = json_array_get_object_element(saved, i);
        Vm *vm = vm_new();

        g_ptr_array_add(vms, vm);
        vm->name = str_member(o, "name");
        vm->qmp_path = str_member(o, "qmp");
        vm->image = str_member(o, "image");
        vm->uri = str_member(o, "uri");
        vm->argv = strv_member(o, "argv");
        vm->env = strv_member(o, "env");
        vm->cwd = str_member(o, "cwd");
        vm->exe = str_member(o, "exe");
        vm->out_path = str_member(o, "stdout");
        vm->err_path = str_member(o, "stderr");
        vm->was_running = json_object_get_boolean_member_with_default(
            o, "was-running", TRUE);
        if (!vm->name || !vm->qmp_path || !vm->uri || !vm->argv[0]) {
            note("%s: VM %u is incomplete", path, i);
            return -1;
        }
    }
    return 1;
}

/* manifest_rewrite -- the manifest as @parser holds it now, durably. */
void manifest_rewrite(const char *path, JsonParser *parser)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *text = report_node_text(json_parser_get_root(parser),
                                             true);

    if (!host_write_durably(path, text, &err)) {
        note("%s", err->message);
    }
}
