/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-reboot of a real Linux guest.  The guest prints "tick N" forever
 * with N kept only in its RAM; the serial log is appended to by both the
 * source and the restored QEMU.  The VM is stopped for the whole save, so
 * the log must read 1, 2, 3, ... with no gap and no restart: the first tick
 * after restore is exactly the last tick before save plus one.
 */
#include "cpr-cycle.h"
#include "guest.h"
#include "test-env.h"

#define BOOT_TIMEOUT_MS  120000   /* TCG boot takes a few seconds; be generous */
#define TICKS_BEFORE     5
#define TICKS_AFTER      10

static void run_cycle(TestBase state_base)
{
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *state_dir = state_base == TEST_BASE_SHM
                                 ? g_strdup(shm) : test_env_mkdtemp(state_base);
    g_autofree char *ram = g_build_filename(shm, "ram", NULL);
    g_autofree char *serial = g_build_filename(shm, "serial.log", NULL);
    g_autofree char *state = g_build_filename(state_dir, "vm.cpr", NULL);
    g_autofree char *uri = test_env_uri(state);
    const char *qemu = test_env_qemu();
    const char *accel = guest_accel(qemu);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(GArray) before = NULL;
    g_autofree char *status = NULL;
    guint last_before;
    gint64 t0, boot_us;
    CprSample t;
    GError *err = NULL;

    args = guest_args(accel, ram, serial, &err);
    g_assert_no_error(err);
    QemuProcOpts opts = {
        .binary = qemu, .args = (const char *const *)args,
        .dir = shm, .name = "src",
    };
    g_test_message("qemu %s, accel %s, uri %s", qemu, accel, uri);

    t0 = g_get_monotonic_time();
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, 1, BOOT_TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);
    boot_us = g_get_monotonic_time() - t0;
    guest_wait_tick(serial, TICKS_BEFORE, BOOT_TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);

    cpr_save(src, CPR_SETUP_SHARED, uri, &t, &err);
    g_assert_no_error(err);
    before = guest_ticks(serial);
    last_before = g_array_index(before, guint, before->len - 1);

    opts.name = "dst";
    dst = cpr_restore(&opts, CPR_SETUP_SHARED, uri, &t, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, last_before + TICKS_AFTER, 30000, NULL, &err);
    g_assert_no_error(err);
    status = qmp_query_status(qemu_proc_qmp(dst), &err);
    g_assert_no_error(err);
    g_assert_cmpstr(status, ==, "running");

    g_test_message("boot to first tick %.2f s; pause %.2f ms, dst qmp-ready "
                   "%.1f ms, restore %.2f ms", boot_us / 1e6, t.pause_us / 1e3,
                   t.qmp_ready_us / 1e3, t.incoming_us / 1e3);

    /* Unbroken 1..N: no tick lost, repeated, or restarted by a reboot. */
    guest_assert_ticks_carry_on(serial, before->len);

    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    if (state_base != TEST_BASE_SHM) {
        test_env_rmtree(state_dir);
    }
    test_env_rmtree(shm);
}

static void test_state_on_shm(void)
{
    run_cycle(TEST_BASE_SHM);
}

static void test_state_on_disk(void)
{
    run_cycle(TEST_BASE_DISK);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/guest-cpr/state-on-shm", test_state_on_shm);
    g_test_add_func("/guest-cpr/state-on-disk", test_state_on_disk);
    return g_test_run();
}
