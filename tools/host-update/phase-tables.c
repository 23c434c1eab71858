/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The phase times an operator reads (the save's and the restore's
 * tables) and the bench reads (--times): durations in ms, each a
 * difference of one clock's instants (host-clock.c).
 */
#include "host-update.h"
#include "host-files.h"
#include "json-report.h"

#include <math.h>
#include <stdio.h>

static void fmt_ms(char *buf, size_t size, double us)
{
    if (isnan(us)) {
        snprintf(buf, size, "-");
    } else {
        snprintf(buf, size, "%.2f", us / 1e3);
    }
}

/* print_save_table -- each VM's save times, as the save ends. */
void print_save_table(GPtrArray *vms)
{
    char a[32], b[32], c[32], d[32];

    printf("%-16s %12s %12s %12s%s\n", "VM", "pre-stop ms", "pause ms",
           "commit ms", opt_file ? "      sync ms" : "");
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        fmt_ms(a, sizeof(a), vm->stop_mono - vm->sent_mono);
        fmt_ms(b, sizeof(b), vm->completed_mono - vm->stop_mono);
        fmt_ms(c, sizeof(c), vm->commit_us);
        fmt_ms(d, sizeof(d), vm->sync_us);
        if (opt_file) {
            printf("%-16s %12s %12s %12s %12s\n", vm->name, a, b, c, d);
        } else {
            printf("%-16s %12s %12s %12s\n", vm->name, a, b, c);
        }
    }
    fflush(stdout);
}

/*
 * print_restore_table -- each VM's save times (from the manifest) and
 * restore times, and the host's: the reboot, and the restart of the VMs.
 */
void print_restore_table(GPtrArray *vms, JsonArray *saved,
                         double reboot_at, const char *boot_before)
{
    g_autofree char *boot = boot_id();
    char v[6][32];
    double up_at, up;
    double first = NAN, last = NAN;

    userspace_start(&up_at, &up);
    printf("%-16s %12s %12s %12s %12s %12s %12s\n", "VM", "pre-stop ms",
           "pause ms", "commit ms", "qemu start ms", "restore ms", "resume ms");
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        JsonObject *o = json_array_get_object_element(saved, i);

        fmt_ms(v[0], 32, num_member(o, "pre-stop-us"));
        fmt_ms(v[1], 32, num_member(o, "pause-us"));
        fmt_ms(v[2], 32, num_member(o, "commit-us"));
        fmt_ms(v[3], 32, vm->qmp_mono - vm->spawn_mono);
        fmt_ms(v[4], 32, vm->resume_mono - vm->incoming_mono);
        fmt_ms(v[5], 32, vm->running_mono - vm->resume_mono);
        printf("%-16s %12s %12s %12s %12s %12s %12s\n", vm->name, v[0], v[1],
               v[2], v[3], v[4], v[5]);
        /* Over the VMs that run (a failed one never does). */
        if (!isnan(vm->running_mono)) {
            first = isnan(first) || vm->spawn_mono < first ? vm->spawn_mono
                                                           : first;
            last = isnan(last) || vm->running_mono > last ? vm->running_mono
                                                          : last;
        }
    }
    if (g_strcmp0(boot, boot_before) == 0) {
        printf("host: no reboot since the save\n");
    } else {
        /* Across the reboot only the wall clock runs on. */
        fmt_ms(v[0], 32, up_at > reboot_at ? up_at - reboot_at : NAN);
        fmt_ms(v[1], 32, first - up);
        printf("host: reboot/kexec to userspace %s ms (wall clock: as good as "
               "the new kernel's), userspace to first QEMU start %s ms\n",
               v[0], v[1]);
    }
    fmt_ms(v[2], 32, last - first);
    printf("host: first QEMU start to last VM running %s ms\n", v[2]);
    fflush(stdout);
}

/* write_times -- --times: what the tables show, unrounded, for the bench
 * (epoch µs). */
void write_times(GPtrArray *vms, JsonArray *saved, double reboot_at,
                 const char *boot_before)
{
    static const char *const save_keys[] = {
        "pre-stop-us", "pause-us", "commit-us", "vm-stop-us",
        "device-save-us", "sync-us", "sent-at-us",
        "stop-at-us", "completed-at-us", NULL,
    };
    g_autofree char *boot = boot_id();
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    double up_at, up;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "rebooted");
    json_builder_add_boolean_value(b, g_strcmp0(boot, boot_before) != 0);
    report_add_num(b, "reboot-at-us", reboot_at);
    userspace_start(&up_at, &up);
    report_add_num(b, "userspace-at-us", up_at);
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        JsonObject *o = json_array_get_object_element(saved, i);

        json_builder_begin_object(b);
        report_add_str(b, "name", vm->name);
        report_add_str(b, "uri", vm->uri);
        for (int k = 0; save_keys[k]; k++) {
            report_add_num(b, save_keys[k], num_member(o, save_keys[k]));
        }
        report_add_num(b, "spawn-at-us", vm->spawn_at);
        report_add_num(b, "qmp-at-us", vm->qmp_at);
        report_add_num(b, "incoming-at-us", vm->incoming_at);
        report_add_num(b, "resume-at-us", vm->resume_at);
        report_add_num(b, "running-at-us", vm->running_at);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    text = report_text(b, false);
    if (!host_write_durably(opt_times, text, &err)) {
        note("%s", err->message);
    }
}
