/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update save: every VM saved at once, checked, and the host
 * rebooted (docs/host-update.md).
 */
#include "host-update.h"
#include "host-files.h"
#include "host-media.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* default_name -- a VM's name: its socket's file name less its
 * extension. */
static char *default_name(const char *qmp_path)
{
    g_autofree char *base = g_path_get_basename(qmp_path);
    char *dot = strrchr(base, '.');

    if (dot && dot != base) {
        *dot = '\0';
    }
    return g_steal_pointer(&base);
}

/*
 * cmd_save -- cpr-host-update save: everything that can be checked before
 * any VM is touched, then every VM set up, every migrate sent before any
 * reply, every image verified, the manifest written, the reboot command
 * run; a failure before it leaves every VM as it was (rollback.c).
 */
int cmd_save(int argc, char **argv, const char *manifest,
             const char *image_dir, const char *reboot_cmd,
             gboolean dry_run)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_free);
    g_autofree char *manifest_path = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    gboolean ok = TRUE;
    double reboot_at;
    gboolean kexec;
    int status;

    if (argc < 1) {
        note("save: no QMP socket given");
        return EXIT_USAGE;
    }
    /* ---- before touching any VM: everything that can be known now ---- */
    for (int i = 0; i < argc; i++) {
        Vm *vm = vm_new();
        char *eq = strchr(argv[i], '=');

        g_ptr_array_add(vms, vm);
        vm->qmp_path = eq ? g_strndup(argv[i], eq - argv[i]) : g_strdup(argv[i]);
        vm->name = default_name(vm->qmp_path);
        if (eq) {
            vm->image = g_strdup(eq + 1);
        } else if (image_dir) {
            g_autofree char *f = g_strconcat(vm->name, ".cpr", NULL);

            vm->image = g_build_filename(image_dir, f, NULL);
        } else {
            note("%s: no image: give SOCKET=IMAGE or --image-dir", vm->qmp_path);
            return EXIT_USAGE;
        }
        vm->log_off = -1;
    }
    if (manifest) {
        manifest_path = g_strdup(manifest);
    } else {
        g_autofree char *dir = g_path_get_dirname(((Vm *)vms->pdata[0])->image);

        manifest_path = g_build_filename(dir, MANIFEST_NAME, NULL);
    }
    if (!cpr_pmem_path && !opt_file) {
        note("cpr-pmem not found (set CPR_PMEM or put it in PATH)");
        return EXIT_USAGE;
    }
    kexec = host_cmd_is_kexec(reboot_cmd);
    cpr_pmem_for_reboot = opt_file ? NULL
                          : cpr_pmem_check_for(kexec || opt_force_cold);
    {
        g_autofree char *mdir = g_path_get_dirname(manifest_path);

        if (access(mdir, W_OK) < 0) {
            note("%s: cannot write the manifest there: %s", mdir,
                 g_strerror(errno));
            return EXIT_FAILED;
        }
        /* restore would refuse it after the reboot: say so now */
        if (!host_dir_trusted(manifest_path, &err)) {
            note("%s; no VM was touched", err->message);
            return EXIT_FAILED;
        }
    }
    if (!dry_run && g_str_equal(reboot_cmd, DEFAULT_REBOOT)) {
        g_autofree char *loaded = NULL;

        if (!g_file_get_contents("/sys/kernel/kexec_loaded", &loaded, NULL,
                                 NULL) || loaded[0] != '1') {
            note("no kexec kernel is loaded (kexec -l KERNEL ...; "
                 "/sys/kernel/kexec_loaded), or give --reboot-cmd; no VM was "
                 "touched");
            return EXIT_FAILED;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autofree char *dir = g_path_get_dirname(vm->image);

        if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
            note("%s: image directory %s does not exist; no VM was touched",
                 vm->name, dir);
            return EXIT_FAILED;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_connect(vm, &err) || !vm_choose_uri(vm, i, &err)) {
            note("%s: %s: %s; no VM was touched", vm->name, vm->qmp_path,
                 err->message);
            return EXIT_FAILED;
        }
        if (vm->exec) {
            note("%s: QEMU has no pmem: transport: saving through the exec: "
                 "helper", vm->name);
        }
    }
    /* DRAM-backed pmem (memmap=): a cold reboot would lose the VM. */
    for (guint i = 0; i < vms->len && !kexec; i++) {
        Vm *vm = vms->pdata[i];
        g_autofree char *what = host_kexec_only_file(vm->pid, vm->image);

        if (what && opt_force_cold) {
            note("%s: %s is on DRAM-backed pmem (e820, memmap=), which "
                 "'%s' loses: going ahead (--force-cold-reboot)", vm->name,
                 what, reboot_cmd);
        } else if (what) {
            note("%s: %s is on DRAM-backed pmem (e820, memmap=): it survives "
                 "a kexec only, and '%s' is not one; use kexec, or "
                 "--force-cold-reboot to lose it; no VM was touched",
                 vm->name, what, reboot_cmd);
            return EXIT_FAILED;
        }
    }

    /* ---- set up, then every migrate before any reply ---- */
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_setup(vm, &err)) {
            vm_fail(vm, "setup", err);
            g_clear_error(&err);
            ok = FALSE;
        }
        trace_start(vm);
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_prepare_image(vm, &err)) {
            vm_fail(vm, "image", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonObject) args = obj_args("uri", vm->uri);

        stamp(&vm->sent_at, &vm->sent_mono);
        if (qmp_send(vm->qmp, "migrate", args, &err)) {
            vm->sent = TRUE;
        } else {
            vm_fail(vm, "migrate", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonNode) ret = NULL;

        if (!vm->sent) {
            continue;
        }
        ret = qmp_receive(vm->qmp, "migrate", &err);
        if (!ret) {
            vm->sent = FALSE;   /* QEMU refused it: nothing started */
            vm_fail(vm, "migrate", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->sent) {
            vm_wait_saved(vm);
            ok = ok && vm->completed;
        }
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->exec && !vm_exec_committed(vm, &err)) {
            vm_fail(vm, "cpr-pmem wait", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    if (ok) {
        print_save_table(vms);
    }

    /* ---- verify every image before anything irreversible ---- */
    for (guint i = 0; i < vms->len && ok && opt_file; i++) {
        if (!sync_image(vms->pdata[i], &err)) {
            vm_fail(vms->pdata[i], "fdatasync", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len && ok && !opt_file; i++) {
        Vm *vm = vms->pdata[i];
        int rc = run_cpr_pmem("check", cpr_pmem_for_reboot, vm->image, NULL);

        if (rc != 0) {
            vm->error = g_strdup_printf("%s check%s%s failed (exit %d)",
                                        cpr_pmem_path,
                                        cpr_pmem_for_reboot ? " " : "",
                                        cpr_pmem_for_reboot ? cpr_pmem_for_reboot
                                                            : "", rc);
            note("%s: %s", vm->name, vm->error);
            ok = FALSE;
        } else {
            note("%s: %s verified%s", vm->name, vm->image,
                 !cpr_pmem_for_reboot ? ""
                 : g_str_equal(cpr_pmem_for_reboot, "--for=kexec")
                 ? " for a kexec" : " for a reboot");
        }
    }
    if (!ok) {
        note("save failed: resuming every VM, invalidating this attempt's images");
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }

    if (dry_run) {
        g_autofree char *dry = g_strconcat(manifest_path, ".dry-run", NULL);

        text = manifest_text(vms, NAN, reboot_cmd);
        if (!host_write_durably(dry, text, &err)) {
            note("%s", err->message);
        }
        note("dry run: not running '%s'; manifest in %s; resuming every VM",
             reboot_cmd, dry);
        rollback(vms, TRUE);
        return EXIT_OK;
    }

    /* Wall clock: the restore compares it, after the reboot, with the
     * new boot's start (no monotonic clock survives a reboot). */
    reboot_at = now_us();
    text = manifest_text(vms, reboot_at, reboot_cmd);
    if (!host_write_durably(manifest_path, text, &err)) {
        note("%s", err->message);
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }
    note("manifest %s written; running: %s", manifest_path, reboot_cmd);
    fflush(stdout);
    fflush(stderr);
    signal(SIGPIPE, SIG_DFL);
    status = system(reboot_cmd);
    signal(SIGPIPE, SIG_IGN);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("reboot command failed (status 0x%x): removing the manifest, "
             "resuming every VM", status);
        host_unlink_type(manifest_path, S_IFREG);
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }
    note("reboot command returned; the VMs stay paused for the reboot");
    return EXIT_OK;
}
