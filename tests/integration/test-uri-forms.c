/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every way a user can name a pmem: image reaches the transport: the
 * QMP "channels" form, the HMP monitor (whose errors are plain text), and
 * "-incoming pmem:PATH" on the command line.  A CMOS byte set before the
 * save must be back after the restore.  Last, the opt-in preload:
 * -global migration.x-preload-transports=pmem.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>

#define RAM_SIZE  "64M"
#define CMOS_BYTE 0x41

static void run_ok(Qmp *qmp, const char *cmd, const char *args_json)
{
    g_autoptr(JsonObject) args = qmp_args(args_json);
    GError *err = NULL;

    qmp_run(qmp, cmd, args, &err);
    g_assert_no_error(err);
}

/* HMP answers with text; an empty answer means success. */
static char *hmp(Qmp *qmp, const char *line)
{
    g_autofree char *args = g_strdup_printf("{\"command-line\": \"%s\"}", line);
    g_autoptr(JsonObject) obj = qmp_args(args);
    g_autoptr(JsonNode) ret = NULL;
    GError *err = NULL;

    ret = qmp_execute(qmp, "human-monitor-command", obj, &err);
    g_assert_no_error(err);
    return g_strdup(json_node_get_string(ret));
}

static QemuProc *start(const char *dir, GStrv args, const char *name,
                       const char *incoming)
{
    GError *err = NULL;
    QemuProc *p = halt_vm_start(dir, args, name, incoming, &err);

    g_assert_no_error(err);
    return p;
}

static void setup_cpr(Qmp *qmp)
{
    run_ok(qmp, "migrate-set-capabilities",
           "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", "
           "\"state\": true}]}");
    run_ok(qmp, "migrate-set-parameters", "{\"mode\": \"cpr-reboot\"}");
}

static void wait_done(Qmp *qmp)
{
    GError *err = NULL;

    qmp_wait_migration(qmp, 60000, NULL, &err);
    g_assert_no_error(err);
}

static void wait_running(QemuProc *p)
{
    GError *err = NULL;

    qmp_wait_status(qemu_proc_qmp(p), "running", 30000, &err);
    g_assert_no_error(err);
}

static void test_json_channels(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *addr = g_strdup_printf(
        "{\"channels\": [{\"channel-type\": \"main\", \"addr\": "
        "{\"transport\": \"plugin\", \"scheme\": \"pmem\", "
        "\"target\": \"%s/vm.cpr\"}}]}", dir);
    g_auto(GStrv) args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_autoptr(QemuProc) src = start(dir, args, "src", NULL);
    g_autoptr(QemuProc) dst = NULL;

    setup_cpr(qemu_proc_qmp(src));
    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x5c);
    run_ok(qemu_proc_qmp(src), "migrate", addr);
    wait_done(qemu_proc_qmp(src));
    g_clear_pointer(&src, qemu_proc_free);

    dst = start(dir, args, "dst", "defer");
    setup_cpr(qemu_proc_qmp(dst));
    run_ok(qemu_proc_qmp(dst), "migrate-incoming", addr);
    wait_running(dst);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, 0x5c);
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

static void test_hmp(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *save = g_strdup_printf("migrate -d pmem:%s/vm.cpr", dir);
    g_autofree char *load = g_strdup_printf("migrate_incoming pmem:%s/vm.cpr",
                                            dir);
    g_autofree char *bad = g_strdup_printf("migrate_incoming pmem:%s/none",
                                           dir);
    g_auto(GStrv) args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_autoptr(QemuProc) src = start(dir, args, "src", NULL);
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *out = NULL;
    Qmp *qmp = qemu_proc_qmp(src);

    g_free(hmp(qmp, "migrate_set_capability x-ignore-shared on"));
    g_free(hmp(qmp, "migrate_set_parameter mode cpr-reboot"));
    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x6d);
    out = hmp(qmp, save);
    /* On tmpfs the monitor hears that a host reboot would lose it all. */
    g_assert_true(g_str_has_prefix(out, "warning: "));
    g_assert_nonnull(strstr(out, "volatile memory"));
    wait_done(qmp);
    g_clear_pointer(&src, qemu_proc_free);

    dst = start(dir, args, "dst", "defer");
    qmp = qemu_proc_qmp(dst);
    g_free(hmp(qmp, "migrate_set_capability x-ignore-shared on"));
    g_free(hmp(qmp, "migrate_set_parameter mode cpr-reboot"));
    /* The transport's refusal reaches the monitor, and a retry works. */
    g_free(out);
    out = hmp(qmp, bad);
    g_test_message("HMP: %s", out);
    g_assert_nonnull(strstr(out, "/none: cannot open"));
    g_free(out);
    out = hmp(qmp, load);
    g_assert_cmpstr(out, ==, "");
    wait_running(dst);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, 0x6d);
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

/*
 * "-incoming pmem:PATH" starts loading before QMP can set capabilities,
 * so it serves the classic full save (RAM in the stream), not cpr-reboot.
 */
static void test_command_line(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *uri = g_strdup_printf("pmem:%s/vm.cpr", dir);
    g_auto(GStrv) src_args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_auto(GStrv) dst_args = halt_vm_args(dir, "ram-fresh", RAM_SIZE);
    g_autoptr(QemuProc) src = start(dir, src_args, "src", NULL);
    g_autoptr(QemuProc) dst = NULL;
    guint32 word = 0;
    GError *err = NULL;

    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x7e);
    qtest_writel(qemu_proc_qtest(src), 0x200000, 0xfeedf00d, &err);
    g_assert_no_error(err);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    wait_done(qemu_proc_qmp(src));
    g_clear_pointer(&src, qemu_proc_free);

    /* Fresh RAM file: the word can only come from the stream. */
    dst = start(dir, dst_args, "dst", uri);
    wait_running(dst);
    qtest_readl(qemu_proc_qtest(dst), 0x200000, &word, &err);
    g_assert_no_error(err);
    g_assert_cmphex(word, ==, 0xfeedf00d);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, 0x7e);
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

/*
 * Start a destination whose plugin directory holds only a copy of the
 * pmem transport, then take the copy away: only a transport QEMU loaded
 * at start-up can still serve the restore.
 */
static QemuProc *start_without_plugin_file(const char *dir, GStrv args,
                                           const char *name)
{
    g_autofree char *plugin = g_build_filename(
        g_getenv("QEMU_TRANSPORT_PLUGIN_DIR"), "transport-pmem.so", NULL);
    g_autofree char *copy = NULL;
    GError *err = NULL;
    QemuProc *p;

    p = halt_vm_start_with_plugin(dir, args, name, "defer", plugin, &copy,
                                  &err);
    g_assert_no_error(err);
    g_assert_cmpint(g_unlink(copy), ==, 0);
    return p;
}

/*
 * -global migration.x-preload-transports=pmem loads the transport at
 * start-up, so the restore does not wait for dlopen(); without it,
 * "-incoming defer" loads nothing.
 */
static void test_preload_property(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *uri = g_strdup_printf("pmem:%s/vm.cpr", dir);
    g_auto(GStrv) args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_auto(GStrv) preload = cpr_preload_args((const char *const *)args, uri);
    g_autoptr(QemuProc) src = start(dir, args, "src", NULL);
    g_autoptr(QemuProc) dst = NULL;
    GError *err = NULL;

    g_assert_true(g_strv_contains((const char *const *)preload,
                                  "migration.x-preload-transports=pmem"));
    setup_cpr(qemu_proc_qmp(src));
    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x4b);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    wait_done(qemu_proc_qmp(src));
    g_clear_pointer(&src, qemu_proc_free);

    /* Not asked for: nothing was loaded, so the scheme is unknown now. */
    dst = start_without_plugin_file(dir, args, "dst-plain");
    setup_cpr(qemu_proc_qmp(dst));
    g_assert_false(qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err));
    g_test_message("without preload: %s", err->message);
    g_assert_nonnull(strstr(err->message, "'pmem'"));
    g_clear_error(&err);
    g_clear_pointer(&dst, qemu_proc_free);

    dst = start_without_plugin_file(dir, preload, "dst");
    setup_cpr(qemu_proc_qmp(dst));
    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    wait_running(dst);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, 0x4b);
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/uri-forms/json-channels", test_json_channels);
    g_test_add_func("/uri-forms/hmp", test_hmp);
    g_test_add_func("/uri-forms/command-line", test_command_line);
    g_test_add_func("/uri-forms/preload-property", test_preload_property);
    return g_test_run();
}
