/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "guest.h"
#include "qemu-proc.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <unistd.h>

#define KVM_PROBE_MS 5000

/* Kernel and initrd from $CPR_GUEST_KERNEL/$CPR_GUEST_INITRD or the (cached) build script. */
static gboolean guest_image(char **kernel, char **initrd, GError **errp)
{
    static char *k, *i;
    const char *script = g_getenv("CPR_BUILD_GUEST");
    const char *argv[] = { script ? script : CPR_BUILD_GUEST_SCRIPT, NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    int status;

    if (!k && g_getenv("CPR_GUEST_KERNEL") && g_getenv("CPR_GUEST_INITRD")) {
        k = g_strdup(g_getenv("CPR_GUEST_KERNEL"));
        i = g_strdup(g_getenv("CPR_GUEST_INITRD"));
    }
    if (!k) {
        if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                          &out, NULL, &status, errp) ||
            !g_spawn_check_wait_status(status, errp)) {
            g_prefix_error(errp, "%s: ", argv[0]);
            return FALSE;
        }
        lines = g_strsplit(out, "\n", 3);
        if (g_strv_length(lines) < 2) {
            g_set_error(errp, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                        "%s printed no kernel/initrd paths", argv[0]);
            return FALSE;
        }
        k = g_strdup(lines[0]);
        i = g_strdup(lines[1]);
    }
    *kernel = k;
    *initrd = i;
    return TRUE;
}

GStrv guest_args(const char *accel, const char *ram_path,
                 const char *serial_path, GError **errp)
{
    return guest_args_config(accel, ram_path, serial_path, NULL, errp);
}

GStrv guest_args_config(const char *accel, const char *ram_path,
                        const char *serial_path, const GuestConfig *cfg,
                        GError **errp)
{
    static const GuestConfig defaults = { 0 };
    const char *size, *machine;
    GPtrArray *a;
    char *kernel, *initrd;

    if (!guest_image(&kernel, &initrd, errp)) {
        return NULL;
    }
    cfg = cfg ? cfg : &defaults;
    size = cfg->ram_size ? cfg->ram_size : "256M";
    machine = cfg->machine ? cfg->machine : "q35";
    a = g_ptr_array_new();
#define ADD(s) g_ptr_array_add(a, g_strdup(s))
#define ADDF(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
    ADD("-nodefaults");
    if (!cfg->no_display) {
        ADD("-display"); ADD("none");
    }
    ADD("-no-reboot");
    ADD("-accel"); ADD(accel);
    ADD("-m"); ADD(size);
    if (cfg->smp) {
        ADD("-smp"); ADD(cfg->smp);
    }
    ADD("-object");
    ADDF("memory-backend-file,id=ram0,size=%s,mem-path=%s,share=on%s%s",
         size, ram_path, cfg->ram_props ? "," : "",
         cfg->ram_props ? cfg->ram_props : "");
    ADD("-machine"); ADDF("%s,memory-backend=ram0", machine);
    ADD("-chardev"); ADDF("file,id=ser0,path=%s,append=on", serial_path);
    ADD("-serial"); ADD("chardev:ser0");
    ADD("-kernel"); ADD(kernel);
    ADD("-initrd"); ADD(initrd);
    /* loglevel=1: no kernel chatter splitting tick lines after a restore */
    ADD("-append"); ADD("console=ttyS0 quiet loglevel=1 panic=-1");
    for (const char *const *e = cfg->extra; e && *e; e++) {
        ADD(*e);
    }
#undef ADD
#undef ADDF
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

GArray *guest_ticks(const char *serial_path)
{
    GArray *ticks = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    guint n;

    if (!g_file_get_contents(serial_path, &text, NULL, NULL)) {
        return ticks;
    }
    lines = g_strsplit(text, "\n", -1);
    n = g_strv_length(lines);
    /* The last element follows the final newline: an unfinished line. */
    for (guint l = 0; l + 1 < n; l++) {
        guint64 v;

        g_strchomp(lines[l]);   /* the tty sends "\r\n" */
        if (g_str_has_prefix(lines[l], "tick ") &&
            g_ascii_string_to_unsigned(lines[l] + 5, 10, 0, G_MAXUINT, &v, NULL)) {
            guint t = v;

            g_array_append_val(ticks, t);
        }
    }
    return ticks;
}

gboolean guest_wait_tick(const char *serial_path, guint n, guint timeout_ms,
                         guint *last, GError **errp)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    guint newest = 0;

    for (;;) {
        g_autoptr(GArray) ticks = guest_ticks(serial_path);

        newest = ticks->len ? g_array_index(ticks, guint, ticks->len - 1) : 0;
        if (newest >= n) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "no tick %u in %s after %u ms (last tick %u)",
                        n, serial_path, timeout_ms, newest);
            return FALSE;
        }
        g_usleep(10000);
    }
    if (last) {
        *last = newest;
    }
    return TRUE;
}

/* Does the guest reach its first tick under KVM within KVM_PROBE_MS? */
static gboolean kvm_boots(const char *qemu)
{
    g_autofree char *dir = NULL;
    g_autofree char *ram = NULL;
    g_autofree char *serial = NULL;
    g_auto(GStrv) args = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(QemuProc) p = NULL;
    gboolean ok = FALSE;

    if (g_access("/dev/kvm", R_OK | W_OK) < 0) {
        return FALSE;
    }
    dir = test_env_mkdtemp(TEST_BASE_SHM);
    ram = g_build_filename(dir, "ram", NULL);
    serial = g_build_filename(dir, "serial.log", NULL);
    args = guest_args("kvm", ram, serial, &err);
    if (args) {
        QemuProcOpts opts = {
            .binary = qemu, .args = (const char *const *)args,
            .dir = dir, .name = "kvm-probe",
        };

        p = qemu_proc_start(&opts, &err);
        ok = p && guest_wait_tick(serial, 1, KVM_PROBE_MS, NULL, &err);
    }
    if (!ok) {
        g_test_message("KVM probe: %s; using TCG", err ? err->message : "failed");
    }
    g_clear_pointer(&p, qemu_proc_free);
    test_env_rmtree(dir);
    return ok;
}

const char *guest_accel(const char *qemu)
{
    static const char *accel;
    const char *env = g_getenv("CPR_ACCEL");

    if (env && *env) {
        return env;
    }
    if (!accel) {
        accel = kvm_boots(qemu) ? "kvm" : "tcg";
    }
    return accel;
}

void guest_assert_ticks_carry_on(const char *serial_path, guint n_before)
{
    g_autoptr(GArray) all = guest_ticks(serial_path);

    g_assert_cmpuint(all->len, >, n_before);
    g_test_message("last tick before save %u, first after restore %u",
                   n_before, g_array_index(all, guint, n_before));
    for (guint i = 0; i < all->len; i++) {
        g_assert_cmpuint(g_array_index(all, guint, i), ==, i + 1);
    }
}
