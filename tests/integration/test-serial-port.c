/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A serial port's host side may change across a cpr-reboot (issue 15):
 * a VM saved with "-serial file:vm-a.log" restores with "-serial
 * file:vm-b.log" (the guest sees the same port), while a destination
 * without the port is refused, and keeps waiting.  Real QEMU, pmem:.
 */
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>

#define RAM_SIZE  "64M"
#define CMOS_BYTE 0x42

static void run_ok(Qmp *qmp, const char *cmd, const char *args_json)
{
    g_autoptr(JsonObject) args = qmp_args(args_json);
    GError *err = NULL;

    qmp_run(qmp, cmd, args, &err);
    g_assert_no_error(err);
}

static void setup_cpr_reboot(Qmp *qmp)
{
    run_ok(qmp, "migrate-set-capabilities",
           "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", "
           "\"state\": true}]}");
    run_ok(qmp, "migrate-set-parameters", "{\"mode\": \"cpr-reboot\"}");
}

/* The halt VM's arguments, with "-serial file:DIR/@log" unless NULL. */
static GStrv vm_args(const char *dir, const char *log)
{
    g_auto(GStrv) base = halt_vm_args(dir, "ram", RAM_SIZE);
    GPtrArray *a = g_ptr_array_new();

    for (guint i = 0; base[i]; i++) {
        g_ptr_array_add(a, g_strdup(base[i]));
    }
    if (log) {
        g_ptr_array_add(a, g_strdup("-serial"));
        g_ptr_array_add(a, g_strdup_printf("file:%s/%s", dir, log));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

static void test_serial_log_moved(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *image = g_strdup_printf("pmem:%s/vm.cpr", dir);
    g_auto(GStrv) src_args = vm_args(dir, "vm-a.log");
    g_auto(GStrv) none_args = vm_args(dir, NULL);
    g_auto(GStrv) dst_args = vm_args(dir, "vm-b.log");
    GError *err = NULL;

    {
        g_autoptr(QemuProc) src = halt_vm_start(dir, src_args, "src", NULL,
                                                &err);

        g_assert_no_error(err);
        setup_cpr_reboot(qemu_proc_qmp(src));
        halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x5a);
        qmp_migrate(qemu_proc_qmp(src), image, &err);
        g_assert_no_error(err);
        qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
        g_assert_no_error(err);
    }
    {
        /* The port removed: refused, naming it. */
        g_autoptr(QemuProc) dst = halt_vm_start(dir, none_args, "none",
                                                "defer", &err);

        g_assert_no_error(err);
        setup_cpr_reboot(qemu_proc_qmp(dst));
        g_assert_false(qmp_migrate_incoming(qemu_proc_qmp(dst), image, &err));
        g_assert_nonnull(err);
        g_test_message("without the port: %s", err->message);
        g_assert_nonnull(strstr(err->message, "command line differs"));
        g_assert_nonnull(strstr(err->message, "- -serial file:"));
        g_clear_error(&err);
    }
    {
        /* The same port, another log: restores. */
        g_autoptr(QemuProc) dst = halt_vm_start(dir, dst_args, "dst",
                                                "defer", &err);
        Qmp *qmp;

        g_assert_no_error(err);
        qmp = qemu_proc_qmp(dst);
        setup_cpr_reboot(qmp);
        qmp_migrate_incoming(qmp, image, &err);
        g_assert_no_error(err);
        qmp_wait_status(qmp, "running", 30000, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE),
                         ==, 0x5a);
    }
    test_env_rmtree(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/serial-port/log-moved", test_serial_log_moved);
    return g_test_run();
}
